//! Supervision (督办): overdue scans, status matrices and per-unit views over the forwarding trees.
use std::collections::{BTreeMap, HashMap};

use super::lean::LeanDelivery;
use super::trace::Node;
use super::{App, AppError, schema};
use crate::domain::model::{Delivery, Document, Level, Role, StepKind};
use crate::domain::state::{DeliveryState, days_late, is_overdue};
use crate::reports::{self, Cell, Table};

/// One overdue delivery.
#[derive(Debug, Clone)]
pub struct OverdueItem {
    pub document_id: String,
    pub document_number: String,
    pub document_title: String,
    pub unit_id: String,
    pub unit_name: String,
    pub region: String,
    pub level: Option<Level>,
    pub deadline: String,
    pub days_late: u32,
    pub state: DeliveryState,
    pub reminders: u32,
}

/// How overdue items are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverdueOrder {
    DaysLateDesc,
    DaysLateAsc,
    Unit,
}

/// Where to look for overdue deliveries.
#[derive(Debug, Clone)]
pub enum OverdueScope {
    /// A document's forwarding tree.
    Document(String),
    /// Every delivery to a unit in a region subtree.
    Region(String),
}

/// One figure of a matrix row: how many deliveries, and to which units when they were asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figure {
    pub count: u32,
    /// Unit ids in unit-id order; empty unless the matrix was built with units.
    pub units: Vec<String>,
}

/// The matrix columns of one row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    pub key: String,
    pub label: String,
    pub delivered: Figure,
    pub acknowledged: Figure,
    pub forwarded: Figure,
    pub reported: Figure,
    pub completed: Figure,
    pub returned: Figure,
    pub overdue: Figure,
}

impl Row {
    fn new(key: &str, label: &str) -> Row {
        Row { key: key.to_owned(), label: label.to_owned(), ..Row::default() }
    }

    fn add(&mut self, d: &LeanDelivery<'_>, overdue: bool, with_units: bool) {
        let has = |k: StepKind| d.has(k);
        for (yes, fig) in [
            (true, &mut self.delivered),
            (d.state.is_acknowledged(), &mut self.acknowledged),
            (has(StepKind::Forwarded), &mut self.forwarded),
            (has(StepKind::Reported), &mut self.reported),
            (d.state == DeliveryState::Completed, &mut self.completed),
            (d.state == DeliveryState::Returned, &mut self.returned),
            (overdue, &mut self.overdue),
        ] {
            if yes {
                fig.count = fig.count.saturating_add(1);
                if with_units {
                    fig.units.push(d.recipient.to_owned());
                }
            }
        }
    }

    /// Adds another row's figures (of other deliveries) to this one's.
    fn absorb(&mut self, other: Row) {
        for (mine, theirs) in [
            (&mut self.delivered, other.delivered),
            (&mut self.acknowledged, other.acknowledged),
            (&mut self.forwarded, other.forwarded),
            (&mut self.reported, other.reported),
            (&mut self.completed, other.completed),
            (&mut self.returned, other.returned),
            (&mut self.overdue, other.overdue),
        ] {
            mine.count = mine.count.saturating_add(theirs.count);
            mine.units.extend(theirs.units);
        }
    }

    fn sort_units(&mut self) {
        for fig in [
            &mut self.delivered,
            &mut self.acknowledged,
            &mut self.forwarded,
            &mut self.reported,
            &mut self.completed,
            &mut self.returned,
            &mut self.overdue,
        ] {
            fig.units.sort_unstable();
        }
    }
}

/// Counts over a document's tree, per level and per region.
#[derive(Debug, Clone)]
pub struct Matrix {
    pub document_number: String,
    pub by_level: Vec<Row>,
    pub by_region: Vec<Row>,
    pub total: Row,
}

/// A document a unit issued, with who has not acted.
#[derive(Debug, Clone)]
pub struct IssuedStatus {
    pub document: Document,
    pub recipients: u32,
    pub not_acted: Vec<String>,
}

fn item(n: &Node, doc_number: &str, doc_title: &str, days: u32) -> OverdueItem {
    OverdueItem {
        document_id: n.via_document_id.to_string(),
        document_number: doc_number.to_owned(),
        document_title: doc_title.to_owned(),
        unit_id: n.unit_id.clone(),
        unit_name: n.unit_name.clone(),
        region: n.region.clone(),
        level: n.level,
        deadline: n.delivery.deadline.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default(),
        days_late: days,
        state: n.delivery.state,
        reminders: n.delivery.reminders(),
    }
}

impl App {
    /// Overdue main deliveries in a scope.
    pub async fn overdue(&self, scope: OverdueScope, order: OverdueOrder) -> Result<Vec<OverdueItem>, AppError> {
        let now = self.now();
        let mut items = match scope {
            OverdueScope::Document(id) => {
                let tree = self.trace(&id, 0).await?;
                let mut titles: BTreeMap<String, (String, String)> = BTreeMap::new();
                titles
                    .insert(tree.document.id.clone(), (tree.document.number.to_string(), tree.document.title.clone()));
                let nodes = tree.flatten();
                let mut out = vec![];
                for n in nodes.iter().filter(|n| n.on_record && n.delivery.role == Role::Main) {
                    let Some(days) = days_late(n.delivery.deadline, n.delivery.state, now) else { continue };
                    if !titles.contains_key(&*n.via_document_id) {
                        let d = self.document(&n.via_document_id).await?;
                        titles.insert(d.id.clone(), (d.number.to_string(), d.title));
                    }
                    let (number, title) = titles.get(&*n.via_document_id).cloned().unwrap_or_default();
                    out.push(item(n, &number, &title, days));
                }
                out
            }
            OverdueScope::Region(code) => {
                let snap = self.snapshot();
                if !snap.registry.regions.contains_key(&code) {
                    return Err(AppError::NotFound(format!("unknown region {code:?}")));
                }
                self.walk(move |s, wanted| {
                    let mut out = vec![];
                    let mut docs: BTreeMap<String, Document> = BTreeMap::new();
                    // A full pass over deliveries: fine for supervision reports, measured in BENCHMARKS.md.
                    for (read, pair) in s.scan(b"dlv/", None, false).enumerate() {
                        wanted.check_every(read)?;
                        let (k, v) = pair?;
                        let d: Delivery = schema::decode(&k, &v)?;
                        let Some(unit) = snap.registry.units.get(&d.recipient) else { continue };
                        if d.role != Role::Main || !snap.registry.region_within(&unit.region, &code) {
                            continue;
                        }
                        let Some(days) = days_late(d.deadline, d.state, now) else { continue };
                        if !docs.contains_key(&d.document_id)
                            && let Some(doc) = schema::load::<Document>(s, &schema::document(&d.document_id))?
                        {
                            docs.insert(doc.id.clone(), doc);
                        }
                        let (number, title) = docs
                            .get(&d.document_id)
                            .map(|x| (x.number.to_string(), x.title.clone()))
                            .unwrap_or_default();
                        out.push(OverdueItem {
                            document_id: d.document_id.clone(),
                            document_number: number,
                            document_title: title,
                            unit_id: unit.id.clone(),
                            unit_name: unit.full_name.clone(),
                            region: unit.region.clone(),
                            level: Some(unit.level),
                            deadline: d.deadline.map(|x| x.format("%Y-%m-%d").to_string()).unwrap_or_default(),
                            days_late: days,
                            state: d.state,
                            reminders: d.reminders(),
                        });
                    }
                    Ok(out)
                })
                .await?
            }
        };
        match order {
            OverdueOrder::DaysLateDesc => {
                items.sort_by(|a, b| b.days_late.cmp(&a.days_late).then(a.unit_id.cmp(&b.unit_id)))
            }
            OverdueOrder::DaysLateAsc => {
                items.sort_by(|a, b| a.days_late.cmp(&b.days_late).then(a.unit_id.cmp(&b.unit_id)))
            }
            OverdueOrder::Unit => items.sort_by(|a, b| (&a.unit_id, &a.document_id).cmp(&(&b.unit_id, &b.document_id))),
        }
        Ok(items)
    }

    /// The status matrix of a document's forwarding tree, with the units behind each figure if `with_units`.
    /// Counts straight from the deliveries: no trace nodes are built.
    pub async fn matrix(&self, document_id: &str, with_units: bool) -> Result<Matrix, AppError> {
        #[derive(Default)]
        struct Acc {
            by_level: BTreeMap<u8, Row>,
            // Hashed: looked up once per delivery; sorted at the end.
            by_region: HashMap<String, Row>,
            total: Row,
            // Where the last recipient's brief was found: a document's deliveries come in recipient order.
            hint: usize,
        }
        let snap = self.snapshot();
        let now = self.now();
        let add = move |acc: &mut Acc, d: &LeanDelivery<'_>, _depth: u32| {
            let overdue = is_overdue(d.deadline(), d.state, now);
            let unit = snap.briefs.find_from(d.recipient, &mut acc.hint);
            if let Some(level) = unit.map(|u| u.level) {
                acc.by_level
                    .entry(level.depth())
                    .or_insert_with(|| Row::new(level.name(), level.name()))
                    .add(d, overdue, with_units);
            }
            let region = unit.map(|u| u.region.as_str()).unwrap_or_default();
            if let Some(row) = acc.by_region.get_mut(region) {
                row.add(d, overdue, with_units);
            } else {
                let label = snap.registry.regions.get(region).map(|r| r.name.as_str()).unwrap_or_default();
                let mut row = Row::new(region, label);
                row.add(d, overdue, with_units);
                acc.by_region.insert(region.to_owned(), row);
            }
            acc.total.add(d, overdue, with_units);
        };
        let merge = |acc: &mut Acc, part: Acc| {
            for (k, row) in part.by_level {
                acc.by_level.entry(k).or_insert_with(|| Row::new(&row.key, &row.label)).absorb(row);
            }
            for (k, row) in part.by_region {
                acc.by_region.entry(k).or_insert_with(|| Row::new(&row.key, &row.label)).absorb(row);
            }
            acc.total.absorb(part.total);
        };
        let (document, mut acc) = self.fold_deliveries(document_id, Acc::default, add, merge).await?;
        acc.total.key = "total".into();
        acc.total.label = "合计".into();
        let mut rows: Vec<&mut Row> = acc.by_level.values_mut().chain(acc.by_region.values_mut()).collect();
        rows.push(&mut acc.total);
        for row in rows {
            row.sort_units();
        }
        let mut by_region: Vec<Row> = acc.by_region.into_values().collect();
        by_region.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Matrix {
            document_number: document.number.to_string(),
            by_level: acc.by_level.into_values().collect(),
            by_region,
            total: acc.total,
        })
    }

    /// What a unit received and has not finished, and what it issued with who has not acted.
    pub async fn unit_view(
        &self,
        unit: &str,
    ) -> Result<(Vec<super::deliveries::DeliveryView>, Vec<IssuedStatus>), AppError> {
        let open = vec![
            DeliveryState::Pending,
            DeliveryState::Acknowledged,
            DeliveryState::Handling,
            DeliveryState::Reported,
            DeliveryState::Forwarded,
        ];
        let (received, _) = self.inbox(unit, open, "", usize::MAX).await?;
        let (docs, _) = self.issued_by(unit, "", usize::MAX).await?;
        let mut issued = Vec::with_capacity(docs.len());
        for doc in docs {
            let id = doc.id.clone();
            let deliveries = self
                .read(move |s| {
                    s.scan(&schema::deliveries_of(&id), None, false)
                        .map(|p| p.map_err(AppError::from).and_then(|(k, v)| Ok(schema::decode::<Delivery>(&k, &v)?)))
                        .collect::<Result<Vec<_>, AppError>>()
                })
                .await?;
            let main: Vec<&Delivery> = deliveries.iter().filter(|d| d.role == Role::Main).collect();
            let not_acted = main
                .iter()
                .filter(|d| matches!(d.state, DeliveryState::Pending | DeliveryState::Acknowledged))
                .map(|d| d.recipient.clone())
                .collect();
            issued.push(IssuedStatus {
                recipients: u32::try_from(main.len()).unwrap_or(u32::MAX),
                not_acted,
                document: doc,
            });
        }
        Ok((received, issued))
    }
}

/// Which report file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    Trace,
    Matrix,
    Overdue,
}

/// File format of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Csv,
    Xlsx,
}

fn state_zh(s: DeliveryState) -> &'static str {
    match s {
        DeliveryState::Pending => "待签收",
        DeliveryState::Acknowledged => "已签收",
        DeliveryState::Handling => "办理中",
        DeliveryState::Reported => "已报送",
        DeliveryState::Forwarded => "已转发",
        DeliveryState::Completed => "已办结",
        DeliveryState::Returned => "已退回",
    }
}

fn matrix_table(m: &Matrix) -> Table {
    let headers = ["分组", "名称", "送达", "已签收", "已转发", "已报送", "已办结", "已退回", "逾期"];
    let row = |group: &str, r: &Row| -> Vec<Cell> {
        let n = |f: &Figure| Cell::from(f.count);
        vec![
            group.into(),
            r.label.clone().into(),
            n(&r.delivered),
            n(&r.acknowledged),
            n(&r.forwarded),
            n(&r.reported),
            n(&r.completed),
            n(&r.returned),
            n(&r.overdue),
        ]
    };
    let mut rows: Vec<Vec<Cell>> = m.by_level.iter().map(|r| row("按层级", r)).collect();
    rows.extend(m.by_region.iter().map(|r| row("按区划", r)));
    rows.push(row("合计", &m.total));
    Table { title: format!("{} 办理情况", m.document_number), headers: headers.map(String::from).to_vec(), rows }
}

fn overdue_table(items: &[OverdueItem]) -> Table {
    let headers = ["文号", "标题", "单位", "区划", "截止日期", "逾期天数", "状态", "催办次数"];
    let rows = items
        .iter()
        .map(|i| {
            vec![
                i.document_number.clone().into(),
                i.document_title.clone().into(),
                i.unit_name.clone().into(),
                i.region.clone().into(),
                chrono::NaiveDate::parse_from_str(&i.deadline, "%Y-%m-%d").map_or(Cell::Empty, Cell::Date),
                i.days_late.into(),
                state_zh(i.state).into(),
                i.reminders.into(),
            ]
        })
        .collect();
    Table { title: "逾期清单".into(), headers: headers.map(String::from).to_vec(), rows }
}

fn trace_table(nodes: &[Node], title: &str) -> Table {
    let headers = [
        "层级",
        "单位",
        "区划",
        "经由文号",
        "主送/抄送",
        "状态",
        "送达时间",
        "签收时间",
        "办理时间",
        "报送时间",
        "转发时间",
        "办结时间",
        "转发文号",
        "截止日期",
        "逾期",
        "催办次数",
    ];
    let at = |n: &Node, k: StepKind| n.at(k).map_or(Cell::Empty, Cell::Time);
    let rows = nodes
        .iter()
        .map(|n| {
            vec![
                n.depth.into(),
                n.unit_name.clone().into(),
                n.region.clone().into(),
                n.via_document_number.to_string().into(),
                (match (n.on_record, n.delivery.role) {
                    (false, _) => "未登记收文",
                    (true, Role::Main) => "主送",
                    (true, Role::Cc) => "抄送",
                })
                .into(),
                state_zh(n.delivery.state).into(),
                at(n, StepKind::Delivered),
                at(n, StepKind::Acknowledged),
                at(n, StepKind::HandlingStarted),
                at(n, StepKind::Reported),
                at(n, StepKind::Forwarded),
                at(n, StepKind::Completed),
                n.forwarded_as.join("、").into(),
                n.delivery.deadline.map_or(Cell::Empty, Cell::Date),
                (if n.overdue { "是" } else { "" }).into(),
                n.delivery.reminders().into(),
            ]
        })
        .collect();
    Table { title: title.into(), headers: headers.map(String::from).to_vec(), rows }
}

impl App {
    /// A report file: (file name, media type, bytes).
    pub async fn report_file(
        &self,
        kind: ReportKind,
        format: ReportFormat,
        document_id: &str,
        region: &str,
    ) -> Result<(String, String, Vec<u8>), AppError> {
        let (name, table) = match kind {
            ReportKind::Trace => {
                let tree = self.trace(document_id, 0).await?;
                let number = tree.document.number.to_string();
                (format!("{number}-trace"), trace_table(&tree.flatten(), &format!("{number} 转发追踪")))
            }
            ReportKind::Matrix => {
                let m = self.matrix(document_id, false).await?;
                (format!("{}-matrix", m.document_number), matrix_table(&m))
            }
            ReportKind::Overdue => {
                let scope = if document_id.is_empty() {
                    if region.is_empty() {
                        return Err(AppError::Invalid("an overdue report needs a document or a region".into()));
                    }
                    OverdueScope::Region(region.to_owned())
                } else {
                    OverdueScope::Document(document_id.to_owned())
                };
                ("overdue".to_owned(), overdue_table(&self.overdue(scope, OverdueOrder::DaysLateDesc).await?))
            }
        };
        let rendered = match format {
            ReportFormat::Csv => reports::csv(&table).map(|b| (format!("{name}.csv"), "text/csv; charset=utf-8", b)),
            ReportFormat::Xlsx => reports::xlsx(&table).map(|b| {
                (format!("{name}.xlsx"), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", b)
            }),
        };
        let (file, media, bytes) =
            rendered.map_err(|e| AppError::Store(crate::store::StoreError::Backend(e.to_string())))?;
        Ok((file, media.to_owned(), bytes))
    }
}
