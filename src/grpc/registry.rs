//! `gongwen.v1.RegistryService`.
use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::page;
use crate::app::registry::UnitFilter;
use crate::app::statements;
use crate::app::{App, AppError};
use crate::pb;
use crate::pb::registry_service_server::RegistryService;

/// Serves the registry.
pub struct RegistryApi {
    pub app: Arc<App>,
}

/// The filter of a unit listing (0 for level or kind: any).
pub(crate) fn unit_filter(r: pb::ListUnitsRequest) -> Result<UnitFilter, AppError> {
    Ok(UnitFilter {
        region_subtree: r.region_subtree,
        level: if r.level == 0 { None } else { Some(statements::level("level", r.level)?) },
        kind: if r.kind == 0 { None } else { Some(statements::kind("kind", r.kind)?) },
        tag: r.tag,
    })
}

#[tonic::async_trait]
impl RegistryService for RegistryApi {
    async fn get_server_info(&self, _: Request<pb::GetServerInfoRequest>) -> Result<Response<pb::ServerInfo>, Status> {
        let op = self.app.operator();
        Ok(Response::new(pb::ServerInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            operator_key_id: op.key_id.clone(),
            operator_public_key: op.public_key.clone(),
            max_attachment_bytes: self.app.max_attachment_bytes(),
            log_public_key: self.app.log_public_key(),
            log_origin: crate::app::log::origin(&self.app.log_public_key()),
        }))
    }

    async fn apply_registry_change(
        &self,
        req: Request<pb::SignedEnvelope>,
    ) -> Result<Response<pb::RegistryChangeReply>, Status> {
        let s = self.app.apply_registry_change(req.into_inner()).await?;
        Ok(Response::new(pb::RegistryChangeReply {
            regions_created: s.regions,
            units_created: s.units,
            groups_created: s.groups,
            event_seq: s.event_seq,
            baselines_set: s.baselines,
            keys_changed: s.keys,
        }))
    }

    async fn change_unit_keys(
        &self,
        req: Request<pb::SignedEnvelope>,
    ) -> Result<Response<pb::RegistryChangeReply>, Status> {
        let s = self.app.change_unit_keys(req.into_inner()).await?;
        Ok(Response::new(pb::RegistryChangeReply {
            event_seq: s.event_seq,
            keys_changed: s.keys,
            ..Default::default()
        }))
    }

    async fn get_region(&self, req: Request<pb::GetRegionRequest>) -> Result<Response<pb::Region>, Status> {
        Ok(Response::new(self.app.region(&req.into_inner().code)?.into()))
    }

    async fn list_regions(
        &self,
        req: Request<pb::ListRegionsRequest>,
    ) -> Result<Response<pb::ListRegionsReply>, Status> {
        let regions = self.app.regions(&req.into_inner().subtree_of)?;
        Ok(Response::new(pb::ListRegionsReply { regions: regions.into_iter().map(Into::into).collect() }))
    }

    async fn get_unit(&self, req: Request<pb::GetUnitRequest>) -> Result<Response<pb::Unit>, Status> {
        Ok(Response::new(self.app.unit(&req.into_inner().id)?.into()))
    }

    async fn list_units(&self, req: Request<pb::ListUnitsRequest>) -> Result<Response<pb::ListUnitsReply>, Status> {
        let mut r = req.into_inner();
        let (size, token) = page(r.page.take());
        let filter = unit_filter(r)?;
        let (units, next) = self.app.units(&filter, &token, size)?;
        Ok(Response::new(pb::ListUnitsReply {
            units: units.into_iter().map(Into::into).collect(),
            next_page_token: next.unwrap_or_default(),
        }))
    }

    async fn list_groups(&self, _: Request<pb::ListGroupsRequest>) -> Result<Response<pb::ListGroupsReply>, Status> {
        Ok(Response::new(pb::ListGroupsReply { groups: self.app.groups().into_iter().map(Into::into).collect() }))
    }

    async fn expand_group(
        &self,
        req: Request<pb::ExpandGroupRequest>,
    ) -> Result<Response<pb::ExpandGroupReply>, Status> {
        let r = req.into_inner();
        let units = self.app.expand_group(&r.group, &r.issuer_unit_id)?;
        Ok(Response::new(pb::ExpandGroupReply { units: units.into_iter().map(Into::into).collect() }))
    }
}
