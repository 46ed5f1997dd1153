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

/// A not-acted page's size from the request's `page_size` (see [`size_within`]).
pub fn page_size(asked: u32) -> usize {
    size_within(asked, DEFAULT_PAGE, MAX_PAGE)
}

/// A page size as every list RPC reads it: 0 for `default`, and no more than `max` (a client asking for more gets
/// the most there is and a token for the rest).
pub fn size_within(asked: u32, default: usize, max: usize) -> usize {
    match usize::try_from(asked).unwrap_or(max) {
        0 => default,
        n => n.min(max),
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

/// Picks one page out of a list offered item by item in any order: the `size` smallest keys after the cursor,
/// without sorting, or even keeping, the rest. A page of 1,000 out of 200,000 recipients then costs one pass over
/// their keys and a heap of 1,000, where sorting the whole list for every page made reading all 200 pages take
/// 33 s. Parts of the list offered on different threads are joined with [`Select::merge`].
#[derive(Debug)]
pub struct Select {
    size: usize,
    after: Option<OwnedKey>,
    /// The smallest keys after the cursor so far, largest on top.
    page: std::collections::BinaryHeap<OwnedKey>,
    /// Items offered, before the cursor or after it.
    total: usize,
    /// Items offered after the cursor: more than `size` means another page follows.
    following: usize,
}

/// A [`Key`] that owns its strings.
pub type OwnedKey = (u32, String, String);

fn borrowed(k: &OwnedKey) -> Key<'_> {
    (k.0, &k.1, &k.2)
}

impl Select {
    /// A page of at most `size` items (at least 1) after `after`.
    pub fn new(size: usize, after: Option<&Cursor>) -> Select {
        let size = size.max(1);
        let after = after.map(|c| c.key.clone());
        // No room set aside up front: a tree walked on many threads makes a selection per forward of its root.
        Select { size, after, page: std::collections::BinaryHeap::new(), total: 0, following: 0 }
    }

    /// Offers one item of the list by its key; keys are distinct.
    pub fn offer(&mut self, key: Key<'_>) {
        self.total += 1;
        if self.after.as_ref().is_some_and(|a| key <= borrowed(a)) {
            return;
        }
        self.following += 1;
        self.keep(key);
    }

    fn keep(&mut self, key: Key<'_>) {
        if self.page.len() < self.size {
            self.page.push((key.0, key.1.to_owned(), key.2.to_owned()));
        } else if let Some(mut top) = self.page.peek_mut()
            && key < borrowed(&top)
        {
            // Strings are only allocated for keys that make the page so far.
            *top = (key.0, key.1.to_owned(), key.2.to_owned());
        }
    }

    /// Adds the items offered to `other`, a selection for the same page over another part of the list.
    pub fn merge(&mut self, other: Select) {
        self.total += other.total;
        self.following += other.following;
        for k in other.page {
            self.keep(borrowed(&k));
        }
    }

    /// Items offered, before or after the cursor.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The page's keys in order, and the cursor after the last of them when more items follow.
    pub fn finish(self, document_id: &str) -> (Vec<OwnedKey>, Option<Cursor>) {
        let more = self.following > self.size;
        let keys = self.page.into_sorted_vec();
        let next =
            keys.last().filter(|_| more).map(|last| Cursor { document_id: document_id.to_owned(), key: last.clone() });
        (keys, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page after `after` of items keyed by depth alone (the other parts of the key equal), offered in the
    /// order given, split in two parts merged as two threads' would be.
    fn page(items: &[u32], after: Option<&Cursor>, size: usize) -> (Vec<u32>, Option<Cursor>, usize) {
        let (mut left, mut right) = (Select::new(size, after), Select::new(size, after));
        let (one, two) = items.split_at(items.len() / 2);
        one.iter().for_each(|n| left.offer((*n, "u", "d")));
        two.iter().for_each(|n| right.offer((*n, "u", "d")));
        left.merge(right);
        let total = left.total();
        let (keys, next) = left.finish("doc");
        (keys.into_iter().map(|k| k.0).collect(), next, total)
    }

    fn pages(items: &[u32], size: usize) -> Vec<Vec<u32>> {
        let mut out = vec![];
        let mut after: Option<Cursor> = None;
        loop {
            let (page, next, total) = page(items, after.as_ref(), size);
            assert_eq!(total, items.len(), "the total counts every item, whichever the page");
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
        assert_eq!(pages(&items, 4), vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]);
        assert_eq!(pages(&items, 5), vec![vec![0, 1, 2, 3, 4], vec![5, 6, 7, 8, 9]], "no empty last page");
        assert_eq!(pages(&items, 10), vec![(0..10).collect::<Vec<_>>()]);
        assert_eq!(pages(&[], 3), vec![Vec::<u32>::new()]);
    }

    #[test]
    fn pages_do_not_depend_on_the_order_items_are_offered_in() {
        // A fixed shuffle: the larger keys early, so the heap has to give them up.
        let items: Vec<u32> = (0..50).map(|i| (i * 37 + 11) % 50).collect();
        let expected: Vec<Vec<u32>> = (0..50).collect::<Vec<_>>().chunks(7).map(<[u32]>::to_vec).collect();
        assert_eq!(pages(&items, 7), expected);
        let reversed: Vec<u32> = (0..50).rev().collect();
        assert_eq!(pages(&reversed, 7), expected);
    }

    #[test]
    fn a_page_goes_on_after_its_last_key_when_the_list_changes() {
        let (first, next, _) = page(&(0..10u32).collect::<Vec<_>>(), None, 3);
        assert_eq!(first, vec![0, 1, 2]);
        // 1 and 3 dropped out (they acted) before the next page was asked for; an offset would now skip 4.
        let (second, _, total) = page(&[0, 2, 4, 5, 6, 7], next.as_ref(), 3);
        assert_eq!(second, vec![4, 5, 6]);
        assert_eq!(total, 6);
        // The cursor's own item gone as well: the page still starts after where it was.
        let (third, _, _) = page(&[0, 4, 5, 6], next.as_ref(), 3);
        assert_eq!(third, vec![4, 5, 6]);
    }

    #[test]
    fn keys_order_by_depth_then_unit_then_document() {
        let mut s = Select::new(3, None);
        for k in [(2, "a", "d1"), (1, "b", "d2"), (1, "b", "d1"), (1, "c", "d0")] {
            s.offer(k);
        }
        let (keys, next) = s.finish("doc");
        let got: Vec<Key<'_>> = keys.iter().map(borrowed).collect();
        assert_eq!(got, vec![(1, "b", "d1"), (1, "b", "d2"), (1, "c", "d0")]);
        assert_eq!(next.map(|c| c.key), Some((1, "c".to_owned(), "d0".to_owned())));
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
        assert_eq!(page_size(0), DEFAULT_PAGE);
        assert_eq!(page_size(1), 1);
        assert_eq!(page_size(10_000), MAX_PAGE);
        assert_eq!(page_size(10_001), MAX_PAGE);
        assert_eq!(page_size(u32::MAX), MAX_PAGE);
    }
}
