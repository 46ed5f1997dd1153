//! Pages of a sorted list and the tokens that say where the next page starts. A token holds the document it was
//! made for and the sort key of the last item sent, not an offset: a page goes on after that item even when the
//! list changed in between, so a recipient who acts between two pages makes no other recipient skip a page.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::AppError;

/// Items in a page when the request names no size.
pub const DEFAULT_PAGE: usize = 1_000;
/// Most items in a page: 10,000 trace nodes are some 1.3 MB, well within a client's usual 4 MiB.
pub const MAX_PAGE: usize = 10_000;

/// A page's size from the request's `page_size` (0 for the default).
pub fn page_size(asked: u32) -> Result<usize, AppError> {
    match usize::try_from(asked) {
        Ok(0) => Ok(DEFAULT_PAGE),
        Ok(n) if n <= MAX_PAGE => Ok(n),
        _ => Err(AppError::field("page_size", format!("at most {MAX_PAGE} items fit in a page, not {asked}"))),
    }
}

/// An item's place in the not-acted list: depth, unit id, via document id.
pub type Key<'a> = (u32, &'a str, &'a str);

/// Where a page ends: the sort key of its last item, in the list under `document_id`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    pub document_id: String,
    key: (u32, String, String),
}

/// Token format version: a token from another version is refused, not misread.
const VERSION: u8 = 1;

impl Cursor {
    fn key(&self) -> Key<'_> {
        (self.key.0, &self.key.1, &self.key.2)
    }

    /// The opaque token a client passes back.
    pub fn token(&self) -> String {
        let mut bytes = vec![VERSION];
        // A cursor of strings and a number always serialises.
        bytes.extend(postcard::to_allocvec(self).unwrap_or_default());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Reads a request's `page_token` for the list under `document_id`: `None` for the first page.
    pub fn read(token: &str, document_id: &str) -> Result<Option<Cursor>, AppError> {
        if token.is_empty() {
            return Ok(None);
        }
        let foreign = || {
            AppError::field("page_token", "not a next_page_token of this list; start again with an empty page_token")
        };
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| foreign())?;
        let cursor = match bytes.split_first() {
            Some((&VERSION, rest)) => postcard::from_bytes::<Cursor>(rest).map_err(|_| foreign())?,
            _ => return Err(foreign()),
        };
        if cursor.document_id != document_id {
            return Err(foreign());
        }
        Ok(Some(cursor))
    }
}

/// The page of `sorted` (ascending by `key`, keys distinct) after `after`, at most `size` items, and the cursor
/// for the page after it when more items follow.
pub fn page<T>(
    document_id: &str,
    sorted: Vec<T>,
    after: Option<&Cursor>,
    size: usize,
    key: impl for<'a> Fn(&'a T) -> Key<'a>,
) -> (Vec<T>, Option<Cursor>) {
    let start = after.map_or(0, |a| sorted.partition_point(|item| key(item) <= a.key()));
    let end = start.saturating_add(size).min(sorted.len());
    let more = end < sorted.len();
    let items: Vec<T> = sorted.into_iter().skip(start).take(end - start).collect();
    let next = items.last().filter(|_| more).map(|last| {
        let (depth, unit, via) = key(last);
        Cursor { document_id: document_id.to_owned(), key: (depth, unit.to_owned(), via.to_owned()) }
    });
    (items, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Items keyed by depth alone, the other parts of the key equal.
    fn by_depth(n: &u32) -> Key<'_> {
        (*n, "u", "d")
    }

    fn pages(items: Vec<u32>, size: usize) -> Vec<Vec<u32>> {
        let mut out = vec![];
        let mut after: Option<Cursor> = None;
        loop {
            let (page, next) = page("doc", items.clone(), after.as_ref(), size, by_depth);
            out.push(page);
            // Through the token, as a client does.
            match next {
                Some(c) => after = Cursor::read(&c.token(), "doc").expect("own token"),
                None => return out,
            }
        }
    }

    #[test]
    fn pages_cover_the_list_once_in_order() {
        let items: Vec<u32> = (0..10).collect();
        assert_eq!(pages(items.clone(), 4), vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]);
        assert_eq!(pages(items.clone(), 5), vec![vec![0, 1, 2, 3, 4], vec![5, 6, 7, 8, 9]], "no empty last page");
        assert_eq!(pages(items, 10), vec![(0..10).collect::<Vec<_>>()]);
        assert_eq!(pages(vec![], 3), vec![Vec::<u32>::new()]);
    }

    #[test]
    fn a_page_goes_on_after_its_last_key_when_the_list_changes() {
        let (first, next) = page("doc", (0..10u32).collect(), None, 3, by_depth);
        assert_eq!(first, vec![0, 1, 2]);
        // 1 and 3 dropped out (they acted) before the next page was asked for.
        let (second, _) = page("doc", vec![0, 2, 4, 5, 6, 7], next.as_ref(), 3, by_depth);
        assert_eq!(second, vec![4, 5, 6]);
    }

    #[test]
    fn tokens_are_good_only_for_their_document_and_format() {
        let c = Cursor { document_id: "doc-1".into(), key: (7, "u7".into(), "d".into()) };
        assert_eq!(Cursor::read(&c.token(), "doc-1").expect("read"), Some(c.clone()));
        assert_eq!(Cursor::read("", "doc-1").expect("first page"), None);
        for bad in
            [Cursor::read(&c.token(), "doc-2"), Cursor::read("not base64!", "doc-1"), Cursor::read("AAAA", "doc-1")]
        {
            let message = bad.expect_err("refused").to_string();
            assert!(message.contains("page_token"), "{message}");
        }
        let mut other_version = URL_SAFE_NO_PAD.decode(c.token()).expect("base64");
        other_version[0] = 2;
        assert!(Cursor::read(&URL_SAFE_NO_PAD.encode(other_version), "doc-1").is_err());
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(page_size(0).ok(), Some(DEFAULT_PAGE));
        assert_eq!(page_size(1).ok(), Some(1));
        assert_eq!(page_size(10_000).ok(), Some(MAX_PAGE));
        assert!(page_size(10_001).is_err());
    }
}
