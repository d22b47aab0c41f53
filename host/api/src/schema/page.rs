//! Cursor paging over a sorted list (pure).

/// One page and whether more follow.
#[derive(Debug, PartialEq)]
pub struct Page<T> {
    /// The items of the page with their keys.
    pub items: Vec<(String, T)>,
    /// Whether items follow the page.
    pub has_next: bool,
}

/// The `first` items of `sorted` (ascending by key) whose key is greater than `after`.
pub fn page<T>(sorted: Vec<(String, T)>, after: Option<&str>, first: usize) -> Page<T> {
    let mut rest = sorted
        .into_iter()
        .filter(|(k, _)| after.is_none_or(|a| k.as_str() > a));
    let items: Vec<(String, T)> = rest.by_ref().take(first).collect();
    Page {
        items,
        has_next: rest.next().is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<(String, usize)> {
        (0..n).map(|i| (format!("ns/s{i:02}"), i)).collect()
    }

    #[test]
    fn pages_follow_each_other_without_gaps_or_repeats() {
        let first = page(keys(5), None, 2);
        assert_eq!(first.items.iter().map(|i| i.1).collect::<Vec<_>>(), [0, 1]);
        assert!(first.has_next);
        let second = page(keys(5), Some("ns/s01"), 2);
        assert_eq!(second.items.iter().map(|i| i.1).collect::<Vec<_>>(), [2, 3]);
        let last = page(keys(5), Some("ns/s03"), 2);
        assert_eq!(last.items.iter().map(|i| i.1).collect::<Vec<_>>(), [4]);
        assert!(!last.has_next);
    }

    #[test]
    fn a_cursor_of_a_removed_item_still_continues_after_it() {
        let mut items = keys(4);
        items.remove(1);
        let p = page(items, Some("ns/s01"), 10);
        assert_eq!(p.items.iter().map(|i| i.1).collect::<Vec<_>>(), [2, 3]);
    }
}
