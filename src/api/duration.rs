//! The CEL rules of duration fields, built from kvop's own parsing rules (`units`).
//!
//! CEL's `duration()` reads Go durations (no `d`, exact nanoseconds), not kvop's, so the
//! rules redo kvop's arithmetic instead: each part's number as a double times its unit's
//! seconds, summed in order, compared with the bound kvop's nanosecond rounding implies.
//! The same floats, the same operations: the rule refuses exactly what kvop refuses.

use std::time::Duration;

use kube::core::{Message, Rule};

use super::DURATION_PATTERN;
use crate::units;

/// Refuses a duration shorter than `minimum`, with kvop's message.
pub fn at_least(minimum: Duration) -> Rule {
    let bound = literal(units::least_seconds_reaching(minimum));
    Rule::new(format!("{} || {} >= {bound}", malformed(), seconds()))
        .message(message(units::too_short_message("' + self + '", minimum)))
}

/// Refuses a duration longer than NATS stores, with kvop's message.
pub fn stored_by_nats() -> Rule {
    let bound = literal(units::most_seconds_stored());
    Rule::new(format!("{} || {} <= {bound}", malformed(), seconds()))
        .message(message(units::too_long_message("' + self + '")))
}

// A malformed duration is the pattern's to report; the sum would be meaningless.
fn malformed() -> String {
    format!("!self.matches(r'{DURATION_PATTERN}')")
}

// The seconds of a well-formed duration, as `units::parse_duration` sums them.
fn seconds() -> String {
    // `endsWith` must try `ms` before `s` and `m`: the longest unit first.
    let mut units = units::DURATION_UNITS.to_vec();
    units.sort_by_key(|(unit, _)| std::cmp::Reverse(unit.len()));
    let (last, rest) = units.split_last().expect("units");
    let factor = rest
        .iter()
        .rev()
        .fold(literal(last.1), |otherwise, (unit, seconds)| {
            format!(
                "part.endsWith('{unit}') ? {} : {otherwise}",
                literal(*seconds)
            )
        });
    format!(
        "self.findAll('[0-9.]+[a-z]+').map(part, double(part.find('^[0-9.]+')) * ({factor})).sum()"
    )
}

// A CEL double literal that parses back to exactly `value`.
fn literal(value: f64) -> String {
    format!("{value:?}")
}

// `text` with `' + self + '` where the value goes, as a CEL string expression.
fn message(text: String) -> Message {
    debug_assert!(!text.replace("' + self + '", "").contains('\''));
    Message::Expression(format!("'{text}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_written_as_exact_cel_doubles() {
        for value in [
            units::least_seconds_reaching(Duration::from_millis(100)),
            units::least_seconds_reaching(Duration::from_secs(1)),
            units::most_seconds_stored(),
        ] {
            let text = literal(value);
            assert!(text.contains('.') && !text.contains('e'), "{text}");
            assert_eq!(text.parse::<f64>(), Ok(value));
        }
    }

    #[test]
    fn the_unit_of_each_part_is_matched_longest_first() {
        let rule = at_least(Duration::from_millis(100)).rule;
        let ms = rule.find("endsWith('ms')").expect("ms");
        let s = rule.find("endsWith('s')").expect("s");
        assert!(ms < s, "{rule}");
    }
}
