//! Reachability repair of layer 0: a row that no search can reach can never be returned.

/// Makes every row reachable on layer 0 from `entry`. A parallel insertion can leave a row
/// that no other row links to (hnsw_rs's upstream issues #32 and #37; any HNSW whose reverse
/// links are pruned can too): a search could then never return it, not even with ef ≥ the row
/// count. Each such row gets a link back from the rows it links to (or from the entry point
/// when those are unreachable too), in row order, so the repair is deterministic.
pub(crate) fn connect_orphans(layer0: &mut [Vec<u32>], entry: usize) {
    let rows = layer0.len();
    if entry >= rows {
        return;
    }
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
    for r in 0..rows {
        if reached[r] {
            continue;
        }
        let from: Vec<usize> = layer0[r]
            .iter()
            .map(|&n| n as usize)
            .filter(|&n| n < rows && reached[n])
            .collect();
        let from = if from.is_empty() { vec![entry] } else { from };
        for n in from {
            layer0[n].push(r as u32);
        }
        visit(r, layer0, &mut reached);
    }
}
