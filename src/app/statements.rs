//! Wire → domain conversions for the signed statements. Signed payloads are protobuf by design (the bytes are
//! what was signed), so the application layer decodes them and turns them into checked domain values here.
use chrono::{DateTime, NaiveDate, Utc};

use super::AppError;
use crate::domain::model::{
    Classification, Disclosure, Genre, Group, GroupScope, KeyAlgorithm, Level, RecipientDeadline, RecipientSpec,
    Region, SealKey, Unit, UnitKind, Urgency,
};
use crate::domain::number::validate_prefix;
use crate::domain::seal;
use crate::pb;

/// A document draft after field checks (recipients not yet expanded).
#[derive(Debug, Clone)]
pub struct Draft {
    pub prefix: String,
    pub year: u32,
    pub title: String,
    pub genre: Genre,
    pub signer: String,
    pub main: Vec<RecipientSpec>,
    pub cc: Vec<RecipientSpec>,
    pub body: String,
    pub attachments: Vec<AttachmentRef>,
    pub dated: NaiveDate,
    pub printed_by: String,
    pub printed_on: Option<NaiveDate>,
    pub deadline: Option<NaiveDate>,
    pub recipient_deadlines: Vec<RecipientDeadline>,
    pub urgency: Urgency,
    pub classification: Classification,
    pub classification_term: String,
    pub copy_number: String,
    pub disclosure: Option<Disclosure>,
    pub contact: String,
    pub note: String,
}

/// An attachment named in a draft.
#[derive(Debug, Clone)]
pub struct AttachmentRef {
    pub sha256: String,
    pub title: String,
    pub media_type: String,
}

const MAX_TEXT: usize = 1 << 20;
const MAX_LINE: usize = 512;

fn line(field: &str, value: &str) -> Result<String, AppError> {
    if value.chars().count() > MAX_LINE {
        return Err(AppError::field(field, format!("at most {MAX_LINE} characters")));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(AppError::field(field, "control characters are not allowed"));
    }
    Ok(value.trim().to_owned())
}

fn required_line(field: &str, value: &str) -> Result<String, AppError> {
    let v = line(field, value)?;
    if v.is_empty() {
        return Err(AppError::field(field, "is required"));
    }
    Ok(v)
}

/// Parses a "YYYY-MM-DD" date; empty gives `None`.
pub fn date(field: &str, value: &str) -> Result<Option<NaiveDate>, AppError> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d")
        .map(Some)
        .map_err(|_| AppError::field(field, format!("{value:?} is not a date in the form YYYY-MM-DD")))
}

/// A lower-case hex SHA-256.
pub fn sha256(field: &str, value: &str) -> Result<String, AppError> {
    if value.len() == 64 && value.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(value.to_owned())
    } else {
        Err(AppError::field(field, format!("{value:?} is not a lower-case hex SHA-256")))
    }
}

/// Checks a unit id's form.
pub fn unit_id(field: &str, id: &str) -> Result<String, AppError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if ok {
        Ok(id.to_owned())
    } else {
        Err(AppError::field(field, format!("{id:?} is not a unit id (a-z, 0-9, '.', '-'; 1 to 64 characters)")))
    }
}

pub fn level(field: &str, v: i32) -> Result<Level, AppError> {
    match pb::Level::try_from(v) {
        Ok(pb::Level::Province) => Ok(Level::Province),
        Ok(pb::Level::City) => Ok(Level::City),
        Ok(pb::Level::County) => Ok(Level::County),
        Ok(pb::Level::Township) => Ok(Level::Township),
        _ => Err(AppError::field(field, "a level (province, city, county, township) is required")),
    }
}

pub fn kind(field: &str, v: i32) -> Result<UnitKind, AppError> {
    match pb::UnitKind::try_from(v) {
        Ok(pb::UnitKind::FinanceBureau) => Ok(UnitKind::FinanceBureau),
        Ok(pb::UnitKind::Department) => Ok(UnitKind::Department),
        Ok(pb::UnitKind::Institution) => Ok(UnitKind::Institution),
        Ok(pb::UnitKind::FinanceOffice) => Ok(UnitKind::FinanceOffice),
        Ok(pb::UnitKind::AuditBureau) => Ok(UnitKind::AuditBureau),
        Ok(pb::UnitKind::Office) => Ok(UnitKind::Office),
        _ => Err(AppError::field(field, "a unit kind is required")),
    }
}

fn timestamp(field: &str, t: &Option<prost_types::Timestamp>) -> Result<Option<DateTime<Utc>>, AppError> {
    match t {
        None => Ok(None),
        Some(ts) => {
            let nanos = u32::try_from(ts.nanos).map_err(|_| AppError::field(field, "negative nanoseconds"))?;
            DateTime::from_timestamp(ts.seconds, nanos)
                .map(Some)
                .ok_or_else(|| AppError::field(field, "timestamp out of range"))
        }
    }
}

impl TryFrom<pb::Region> for Region {
    type Error = AppError;
    fn try_from(r: pb::Region) -> Result<Self, AppError> {
        let code_ok = (r.code.len() == 6 || r.code.len() == 9) && r.code.bytes().all(|b| b.is_ascii_digit());
        if !code_ok {
            return Err(AppError::field("region.code", format!("{:?} is not a 6- or 9-digit region code", r.code)));
        }
        Ok(Region {
            name: required_line("region.name", &r.name)?,
            parent: if r.parent_code.is_empty() { None } else { Some(r.parent_code) },
            level: level("region.level", r.level)?,
            code: r.code,
        })
    }
}

impl TryFrom<pb::SealKey> for SealKey {
    type Error = AppError;
    fn try_from(k: pb::SealKey) -> Result<Self, AppError> {
        let algorithm = KeyAlgorithm::parse(&k.algorithm).ok_or_else(|| {
            AppError::field("seal_key.algorithm", format!("{:?} is not supported (ed25519 or sm2)", k.algorithm))
        })?;
        seal::check_public_key(algorithm, &k.public_key)?;
        Ok(SealKey {
            key_id: required_line("seal_key.key_id", &k.key_id)?,
            algorithm,
            public_key: k.public_key,
            valid_from: timestamp("seal_key.valid_from", &k.valid_from)?,
            revoked_at: timestamp("seal_key.revoked_at", &k.revoked_at)?,
        })
    }
}

impl TryFrom<pb::Unit> for Unit {
    type Error = AppError;
    fn try_from(u: pb::Unit) -> Result<Self, AppError> {
        for p in &u.number_prefixes {
            validate_prefix(p)?;
        }
        let tags = u.tags.iter().map(|t| required_line("unit.tags", t)).collect::<Result<Vec<_>, _>>()?;
        let keys = u.seal_keys.into_iter().map(SealKey::try_from).collect::<Result<Vec<_>, _>>()?;
        Ok(Unit {
            id: unit_id("unit.id", &u.id)?,
            full_name: required_line("unit.full_name", &u.full_name)?,
            short_name: line("unit.short_name", &u.short_name)?,
            region: u.region_code,
            level: level("unit.level", u.level)?,
            kind: kind("unit.kind", u.kind)?,
            tags,
            prefixes: u.number_prefixes,
            keys,
        })
    }
}

impl TryFrom<pb::RecipientGroup> for Group {
    type Error = AppError;
    fn try_from(g: pb::RecipientGroup) -> Result<Self, AppError> {
        let scope = match pb::GroupScope::try_from(g.scope) {
            Ok(pb::GroupScope::SameRegion) => GroupScope::SameRegion,
            Ok(pb::GroupScope::ChildRegions) => GroupScope::ChildRegions,
            Ok(pb::GroupScope::Subtree) => GroupScope::Subtree,
            _ => return Err(AppError::field("group.scope", "a scope is required")),
        };
        let level = if g.level == 0 { None } else { Some(level("group.level", g.level)?) };
        let kinds = g.kinds.iter().map(|k| kind("group.kinds", *k)).collect::<Result<Vec<_>, _>>()?;
        Ok(Group {
            name: required_line("group.name", &g.name)?,
            scope,
            level,
            kinds,
            tags: g.tags,
            description: line("group.description", &g.description)?,
        })
    }
}

/// A recipient as written.
pub fn recipient(field: &str, r: pb::Recipient) -> Result<RecipientSpec, AppError> {
    match r.target {
        Some(pb::recipient::Target::Group(g)) => Ok(RecipientSpec::Group(required_line(field, &g)?)),
        Some(pb::recipient::Target::UnitId(u)) => Ok(RecipientSpec::Unit(unit_id(field, &u)?)),
        None => Err(AppError::field(field, "a recipient needs a group or a unit id")),
    }
}

fn genre(v: i32) -> Result<Genre, AppError> {
    use pb::Genre as G;
    Ok(match G::try_from(v) {
        Ok(G::Resolution) => Genre::Resolution,
        Ok(G::Decision) => Genre::Decision,
        Ok(G::Order) => Genre::Order,
        Ok(G::Communique) => Genre::Communique,
        Ok(G::Announcement) => Genre::Announcement,
        Ok(G::PublicNotice) => Genre::PublicNotice,
        Ok(G::Opinion) => Genre::Opinion,
        Ok(G::Notice) => Genre::Notice,
        Ok(G::Bulletin) => Genre::Bulletin,
        Ok(G::Report) => Genre::Report,
        Ok(G::Request) => Genre::Request,
        Ok(G::Reply) => Genre::Reply,
        Ok(G::Motion) => Genre::Motion,
        Ok(G::Letter) => Genre::Letter,
        Ok(G::Minutes) => Genre::Minutes,
        _ => return Err(AppError::field("draft.genre", "a genre (文种) is required")),
    })
}

impl TryFrom<pb::DocumentDraft> for Draft {
    type Error = AppError;
    fn try_from(d: pb::DocumentDraft) -> Result<Self, AppError> {
        validate_prefix(&d.number_prefix)?;
        if !(1949..=2999).contains(&d.number_year) {
            return Err(AppError::field("draft.number_year", format!("{} is not a plausible year", d.number_year)));
        }
        if d.body.len() > MAX_TEXT {
            return Err(AppError::field("draft.body", format!("at most {MAX_TEXT} bytes")));
        }
        let urgency = match pb::Urgency::try_from(d.urgency) {
            Ok(pb::Urgency::None) => Urgency::None,
            Ok(pb::Urgency::Urgent) => Urgency::Urgent,
            Ok(pb::Urgency::ExtraUrgent) => Urgency::ExtraUrgent,
            Ok(pb::Urgency::Flash) => Urgency::Flash,
            Ok(pb::Urgency::Priority) => Urgency::Priority,
            Err(_) => return Err(AppError::field("draft.urgency", "unknown urgency")),
        };
        let classification = match pb::Classification::try_from(d.classification) {
            Ok(pb::Classification::None) => Classification::None,
            Ok(pb::Classification::Secret) => Classification::Secret,
            Ok(pb::Classification::Confidential) => Classification::Confidential,
            Ok(pb::Classification::TopSecret) => Classification::TopSecret,
            Err(_) => {
                return Err(AppError::field("draft.classification", "unknown classification"));
            }
        };
        let classification_term = line("draft.classification_term", &d.classification_term)?;
        if classification != Classification::None && classification_term.is_empty() {
            return Err(AppError::field(
                "draft.classification_term",
                "a classified document needs its term (保密期限)",
            ));
        }
        let disclosure = match pb::Disclosure::try_from(d.disclosure) {
            Ok(pb::Disclosure::Unspecified) => None,
            Ok(pb::Disclosure::Public) => Some(Disclosure::Public),
            Ok(pb::Disclosure::OnRequest) => Some(Disclosure::OnRequest),
            Ok(pb::Disclosure::NotPublic) => Some(Disclosure::NotPublic),
            Err(_) => {
                return Err(AppError::field("draft.disclosure", "unknown disclosure option"));
            }
        };
        let main = d
            .main_recipients
            .into_iter()
            .map(|r| recipient("draft.main_recipients", r))
            .collect::<Result<Vec<_>, _>>()?;
        let cc =
            d.cc_recipients.into_iter().map(|r| recipient("draft.cc_recipients", r)).collect::<Result<Vec<_>, _>>()?;
        let attachments = d
            .attachments
            .into_iter()
            .map(|a| {
                Ok(AttachmentRef {
                    sha256: sha256("draft.attachments.sha256", &a.sha256)?,
                    title: required_line("draft.attachments.title", &a.title)?,
                    media_type: line("draft.attachments.media_type", &a.media_type)?,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        let recipient_deadlines = d
            .recipient_deadlines
            .into_iter()
            .map(|rd| {
                let r = rd
                    .recipient
                    .ok_or_else(|| AppError::field("draft.recipient_deadlines", "recipient is required"))?;
                Ok(RecipientDeadline {
                    recipient: recipient("draft.recipient_deadlines.recipient", r)?,
                    due: date("draft.recipient_deadlines.due", &rd.due)?
                        .ok_or_else(|| AppError::field("draft.recipient_deadlines.due", "is required"))?,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        Ok(Draft {
            prefix: d.number_prefix,
            year: d.number_year,
            title: crate::domain::title::normalize_title(&line("draft.title", &d.title)?),
            genre: genre(d.genre)?,
            signer: line("draft.signer", &d.signer)?,
            main,
            cc,
            body: d.body,
            attachments,
            dated: date("draft.dated", &d.dated)?
                .ok_or_else(|| AppError::field("draft.dated", "成文日期 is required"))?,
            printed_by: line("draft.printed_by", &d.printed_by)?,
            printed_on: date("draft.printed_on", &d.printed_on)?,
            deadline: date("draft.deadline", &d.deadline)?,
            recipient_deadlines,
            urgency,
            classification,
            classification_term,
            copy_number: line("draft.copy_number", &d.copy_number)?,
            disclosure,
            contact: line("draft.contact", &d.contact)?,
            note: line("draft.note", &d.note)?,
        })
    }
}
