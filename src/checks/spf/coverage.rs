//! The union of `ip4:`/`ip6:` pass ranges in one record, to tell when the ranges together
//! cover every address of a family (`ip4:0.0.0.0/1 ip4:128.0.0.0/1` is as open as
//! `ip4:0.0.0.0/0`).

use super::Mechanism;

/// Pass ranges seen so far, per family, as inclusive `(first, last)` address intervals.
#[derive(Debug, Default)]
pub(super) struct Coverage {
    ip4: Vec<(u128, u128)>,
    ip6: Vec<(u128, u128)>,
}

impl Coverage {
    /// Adds the range of an `ip4:`/`ip6:` mechanism; true when its family is now fully covered.
    pub(super) fn add(&mut self, mechanism: &Mechanism) -> bool {
        match mechanism {
            Mechanism::Ip4 { network, prefix } => {
                add_range(&mut self.ip4, u128::from(u32::from(*network)), *prefix, 32)
            }
            Mechanism::Ip6 { network, prefix } => {
                add_range(&mut self.ip6, u128::from(*network), *prefix, 128)
            }
            _ => false,
        }
    }
}

fn add_range(ranges: &mut Vec<(u128, u128)>, address: u128, prefix: u8, bits: u32) -> bool {
    let host_mask = low_bits(bits.saturating_sub(u32::from(prefix)));
    let first = address & !host_mask;
    ranges.push((first, first | host_mask));
    ranges.sort_unstable();
    let last_address = low_bits(bits);
    // The first address not covered yet by the sorted intervals.
    let mut uncovered = 0u128;
    for &(first, last) in ranges.iter() {
        if first > uncovered {
            return false;
        }
        if last >= last_address {
            return true;
        }
        uncovered = uncovered.max(last + 1);
    }
    false
}

/// A mask of the lowest `count` bits.
fn low_bits(count: u32) -> u128 {
    if count >= 128 {
        u128::MAX
    } else {
        (1u128 << count) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covers(terms: &[&str]) -> bool {
        let record = super::super::parse(&format!("v=spf1 {}", terms.join(" "))).unwrap();
        let mut coverage = Coverage::default();
        record.directives.iter().any(|d| coverage.add(&d.mechanism))
    }

    #[test]
    fn halves_quarters_and_slash_zero_cover_a_family() {
        assert!(covers(&["ip4:0.0.0.0/1", "ip4:128.0.0.0/1"]));
        assert!(covers(&[
            "ip4:192.0.0.0/2",
            "ip4:0.0.0.0/1",
            "ip4:128.0.0.0/2"
        ]));
        assert!(covers(&["ip4:10.0.0.0/0"]));
        assert!(covers(&["ip6:8000::/1", "ip6:::/1"]));
        assert!(covers(&["ip6:::/0"]));
    }

    #[test]
    fn gaps_and_mixed_families_do_not_cover() {
        assert!(!covers(&["ip4:0.0.0.0/1", "ip4:128.0.0.0/2"]));
        assert!(!covers(&["ip4:0.0.0.0/1", "ip6:8000::/1"]));
        assert!(!covers(&["ip4:0.0.0.0/1", "ip4:0.0.0.0/1"]));
        assert!(!covers(&["ip4:255.255.255.255", "ip4:0.0.0.0/1"]));
    }
}
