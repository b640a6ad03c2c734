//! Aligning two tokenizations of the same text (spec §8.6): reading mode
//! across tokenizers scores the lab's positions where the suspect's
//! tokenization has a token boundary too, so that the suspect's prediction
//! there is a prediction of the text from the same point on.

use std::collections::HashMap;

/// The byte offsets at which a tokenization has a boundary, with the index
/// of the token that starts there: token `i` starts a boundary when it is
/// the first token or the previous token ends exactly where it starts
/// (pieces of one multi-byte character share its range and do not).
fn boundary_starts(offsets: &[(usize, usize)]) -> impl Iterator<Item = (usize, usize)> + '_ {
    offsets
        .iter()
        .enumerate()
        .filter(move |(i, (start, _))| *i == 0 || offsets[i - 1].1 == *start)
        .map(|(i, (start, _))| (*start, i))
}

/// The pairs `(j, k)` of a lab token `j` and a suspect token `k` that
/// start the same boundary of the text, in increasing order. `lab` and
/// `suspect` are each token's byte range `[start, end)` in the same text.
pub fn shared_starts(lab: &[(usize, usize)], suspect: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut at: HashMap<usize, usize> = HashMap::new();
    for (start, k) in boundary_starts(suspect) {
        at.entry(start).or_insert(k);
    }
    let mut pairs: Vec<(usize, usize)> = boundary_starts(lab)
        .filter_map(|(start, j)| at.get(&start).map(|&k| (j, k)))
        .collect();
    pairs.sort_unstable();
    pairs.dedup_by_key(|p| p.0);
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_boundaries_of_two_tokenizations() {
        // "the river": lab [the][ river], suspect [th][e][ ri][ver].
        let lab = [(0, 3), (3, 9)];
        let suspect = [(0, 2), (2, 3), (3, 6), (6, 9)];
        assert_eq!(shared_starts(&lab, &suspect), vec![(0, 0), (1, 2)]);
        // Pieces of one character share its range: not a boundary.
        let lab = [(0, 1), (1, 3), (1, 3), (3, 4)];
        let suspect = [(0, 1), (1, 3), (3, 4)];
        assert_eq!(shared_starts(&lab, &suspect), vec![(0, 0), (1, 1), (3, 2)]);
        assert!(shared_starts(&[], &suspect).is_empty());
    }
}
