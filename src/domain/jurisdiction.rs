//! Region tree queries, recipient-group expansion and the jurisdiction rules (domain.md §1), over the in-memory
//! [`Registry`].
use super::DomainError;
use super::model::{Expansion, Group, RecipientSpec, Registry, Unit};

impl Registry {
    /// True when `code` is `ancestor` or lies below it.
    pub fn region_within(&self, code: &str, ancestor: &str) -> bool {
        let _ = (code, ancestor);
        unimplemented!("filled in by the domain work")
    }

    /// The units `group` reaches when `issuer` issues to it, in id order, the issuer itself excluded.
    pub fn expand_group<'a>(&'a self, group: &Group, issuer: &Unit) -> Vec<&'a Unit> {
        let _ = (group, issuer);
        unimplemented!("filled in by the domain work")
    }

    /// Expands main and cc recipients as written, removes duplicates (main wins) and the issuer, and checks
    /// jurisdiction and the no-skipping-levels rule.
    pub fn resolve_recipients(
        &self,
        issuer: &Unit,
        main: &[RecipientSpec],
        cc: &[RecipientSpec],
    ) -> Result<Expansion, DomainError> {
        let _ = (issuer, main, cc);
        unimplemented!("filled in by the domain work")
    }
}
