//! `gongwen.v1.SupervisionService`.
use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::auth::caller;
use super::convert::{level, state};
use crate::app::App;
use crate::app::supervision::{OverdueItem, OverdueOrder, OverdueScope, ReportFormat, ReportKind, Row};
use crate::pb;
use crate::pb::supervision_service_server::SupervisionService;

/// Serves supervision queries and reports.
pub struct SupervisionApi {
    pub app: Arc<App>,
}

fn row(r: Row, with_units: bool) -> pb::MatrixRow {
    pb::MatrixRow {
        key: r.key,
        label: r.label,
        delivered: r.delivered.count,
        acknowledged: r.acknowledged.count,
        forwarded: r.forwarded.count,
        reported: r.reported.count,
        completed: r.completed.count,
        returned: r.returned.count,
        overdue: r.overdue.count,
        units: with_units.then_some(pb::MatrixUnits {
            delivered: r.delivered.units,
            acknowledged: r.acknowledged.units,
            forwarded: r.forwarded.units,
            reported: r.reported.units,
            completed: r.completed.units,
            returned: r.returned.units,
            overdue: r.overdue.units,
        }),
    }
}

impl From<OverdueItem> for pb::OverdueItem {
    fn from(i: OverdueItem) -> Self {
        pb::OverdueItem {
            document_id: i.document_id,
            document_number: i.document_number,
            document_title: i.document_title,
            unit_id: i.unit_id,
            unit_name: i.unit_name,
            region_code: i.region,
            level: i.level.map_or(0, |l| level(l) as i32),
            deadline: i.deadline,
            days_late: i.days_late,
            state: state(i.state) as i32,
            reminders: i.reminders,
        }
    }
}

/// What an overdue listing covers.
pub(crate) fn overdue_scope(scope: Option<pb::overdue_request::Scope>) -> Result<OverdueScope, Status> {
    match scope {
        Some(pb::overdue_request::Scope::DocumentId(id)) => Ok(OverdueScope::Document(id)),
        Some(pb::overdue_request::Scope::RegionCode(code)) => Ok(OverdueScope::Region(code)),
        None => Err(Status::invalid_argument("give a document id or a region code")),
    }
}

/// The order of an overdue listing.
pub(crate) fn overdue_order(order: i32) -> Result<OverdueOrder, Status> {
    match pb::OverdueOrder::try_from(order) {
        Ok(pb::OverdueOrder::DaysLateDesc) => Ok(OverdueOrder::DaysLateDesc),
        Ok(pb::OverdueOrder::DaysLateAsc) => Ok(OverdueOrder::DaysLateAsc),
        Ok(pb::OverdueOrder::Unit) => Ok(OverdueOrder::Unit),
        Err(_) => Err(Status::invalid_argument(format!("order: {order} is not an order"))),
    }
}

/// The kind and file format of a report.
pub(crate) fn report_choice(kind: i32, format: i32) -> Result<(ReportKind, ReportFormat), Status> {
    let kind = match pb::ReportKind::try_from(kind) {
        Ok(pb::ReportKind::Trace) => ReportKind::Trace,
        Ok(pb::ReportKind::Matrix) => ReportKind::Matrix,
        Ok(pb::ReportKind::Overdue) => ReportKind::Overdue,
        _ => return Err(Status::invalid_argument("kind: choose trace, matrix or overdue")),
    };
    let format = match pb::ReportFormat::try_from(format) {
        Ok(pb::ReportFormat::Csv) => ReportFormat::Csv,
        Ok(pb::ReportFormat::Xlsx) => ReportFormat::Xlsx,
        Err(_) => return Err(Status::invalid_argument("format: choose csv or xlsx")),
    };
    Ok((kind, format))
}

#[tonic::async_trait]
impl SupervisionService for SupervisionApi {
    async fn list_overdue(&self, req: Request<pb::OverdueRequest>) -> Result<Response<pb::OverdueReply>, Status> {
        let caller = caller(&req)?;
        let r = req.into_inner();
        let scope = overdue_scope(r.scope)?;
        match &scope {
            OverdueScope::Document(id) => {
                self.app.may_trace(&caller, id).await?;
            }
            OverdueScope::Region(code) => {
                self.app.region(code)?;
                self.app.may_see_region(&caller, code)?;
            }
        }
        let order = overdue_order(r.order)?;
        let items = self.app.overdue(scope, order).await?;
        Ok(Response::new(pb::OverdueReply { items: items.into_iter().map(Into::into).collect() }))
    }

    async fn status_matrix(&self, req: Request<pb::MatrixRequest>) -> Result<Response<pb::StatusMatrixReply>, Status> {
        let caller = caller(&req)?;
        let r = req.into_inner();
        self.app.may_trace(&caller, &r.document_id).await?;
        let m = self.app.matrix(&r.document_id, r.with_units).await?;
        Ok(Response::new(pb::StatusMatrixReply {
            document_number: m.document_number,
            by_level: m.by_level.into_iter().map(|x| row(x, r.with_units)).collect(),
            by_region: m.by_region.into_iter().map(|x| row(x, r.with_units)).collect(),
            total: Some(row(m.total, r.with_units)),
        }))
    }

    async fn unit_view(&self, req: Request<pb::UnitViewRequest>) -> Result<Response<pb::UnitViewReply>, Status> {
        let caller = caller(&req)?;
        let unit = req.into_inner().unit_id;
        self.app.unit(&unit)?;
        self.app.may_see_unit(&caller, &unit)?;
        let (received, issued) = self.app.unit_view(&unit).await?;
        Ok(Response::new(pb::UnitViewReply {
            open_received: received.into_iter().map(Into::into).collect(),
            issued: issued
                .into_iter()
                .map(|s| pb::IssuedStatus {
                    document_id: s.document.id.clone(),
                    document_number: s.document.number.to_string(),
                    document_title: s.document.title.clone(),
                    recipients: s.recipients,
                    not_acted_unit_ids: s.not_acted,
                })
                .collect(),
        }))
    }

    async fn export_report(&self, req: Request<pb::ReportRequest>) -> Result<Response<pb::ReportFile>, Status> {
        let caller = caller(&req)?;
        let r = req.into_inner();
        if r.document_id.is_empty() {
            self.app.region(&r.region_code)?;
            self.app.may_see_region(&caller, &r.region_code)?;
        } else {
            self.app.may_trace(&caller, &r.document_id).await?;
        }
        let (kind, format) = report_choice(r.kind, r.format)?;
        let (file_name, media_type, content) =
            self.app.report_file(kind, format, &r.document_id, &r.region_code).await?;
        Ok(Response::new(pb::ReportFile { file_name, media_type, content }))
    }
}
