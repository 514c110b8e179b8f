//! Reachability repair of layer 0: a row that no search can reach can never be returned.

/// Makes every row reachable on layer 0 from `entry`. A parallel insertion can leave a row
/// that no other row links to (hnsw_rs's upstream issues #32 and #37; any HNSW whose reverse
/// links are pruned can too): a search could then never return it, not even with ef ≥ the row
/// count. Each such row gets a link back from the reachable rows it links to (or, when none
/// of them is reachable, from the entry point), in row order, so the repair is deterministic.
/// No list grows past twice its nominal `max_links` (what `verify` accepts): a full row is
/// passed over, and an orphan whose reachable neighbours are all full is linked from the
/// first reachable row with room.
pub(crate) fn connect_orphans(layer0: &mut [Vec<u32>], entry: usize, max_links: usize) {
    let rows = layer0.len();
    if entry >= rows {
        return;
    }
    let bound = 2 * max_links.max(1);
    let mut reached = vec![false; rows];
    let mut stack = Vec::new();
    let mut visit = |start: usize, links: &[Vec<u32>], reached: &mut Vec<bool>| {
        stack.push(start);
        while let Some(r) = stack.pop() {
            if std::mem::replace(&mut reached[r], true) {
                continue;
            }
            stack.extend(
                links[r]
                    .iter()
                    .map(|&n| n as usize)
                    .filter(|&n| n < rows && !reached[n]),
            );
        }
    };
    visit(entry, layer0, &mut reached);
    // Reached rows with room, for orphans none of whose own neighbours is reachable; the
    // cursor only moves forward, so finding them costs O(rows) in total.
    let mut spare = 0usize;
    for r in 0..rows {
        if reached[r] {
            continue;
        }
        let from: Vec<usize> = layer0[r]
            .iter()
            .map(|&n| n as usize)
            .filter(|&n| n < rows && reached[n] && layer0[n].len() < bound)
            .collect();
        if from.is_empty() {
            let from = if layer0[entry].len() < bound {
                entry
            } else {
                while spare < rows && !(reached[spare] && layer0[spare].len() < bound) {
                    spare += 1;
                }
                if spare < rows {
                    spare
                } else {
                    entry
                }
            };
            layer0[from].push(r as u32);
        }
        for n in from {
            layer0[n].push(r as u32);
        }
        visit(r, layer0, &mut reached);
    }
}

#[cfg(test)]
mod tests {
    use super::connect_orphans;

    fn reachable(layer0: &[Vec<u32>], entry: usize) -> usize {
        let mut seen = vec![false; layer0.len()];
        let mut stack = vec![entry];
        let mut count = 0;
        while let Some(r) = stack.pop() {
            if std::mem::replace(&mut seen[r], true) {
                continue;
            }
            count += 1;
            stack.extend(layer0[r].iter().map(|&n| n as usize));
        }
        count
    }

    #[test]
    fn every_row_becomes_reachable_and_no_list_exceeds_twice_its_size() {
        // 1,000 rows that all link to row 1 only, and nobody links to them: the worst case for
        // a repair that links back from every neighbour.
        let mut layer0: Vec<Vec<u32>> = (0..1000).map(|_| vec![1]).collect();
        layer0[0] = vec![1];
        layer0[1] = vec![0];
        connect_orphans(&mut layer0, 0, 4);
        assert_eq!(reachable(&layer0, 0), 1000);
        assert!(
            layer0.iter().all(|l| l.len() <= 8),
            "{:?}",
            layer0.iter().map(Vec::len).max()
        );
    }

    #[test]
    fn a_connected_graph_is_left_alone() {
        let mut layer0: Vec<Vec<u32>> = (0..10u32).map(|r| vec![(r + 1) % 10]).collect();
        let before = layer0.clone();
        connect_orphans(&mut layer0, 3, 2);
        assert_eq!(layer0, before);
    }
}
