//! Durations (`90s`, `1h30m`, `30d`) and byte sizes (`1048576`, `1Mi`, `10G`) of manifests.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The longest duration NATS stores: nanoseconds in an i64 (about 292 years). A longer
/// one is stored wrapped, and then differs from the manifest on every run.
pub const MAX_DURATION: Duration = Duration::from_nanos(i64::MAX as u64);

/// The longest duration text kvop reads. The CRDs declare it as `maxLength`: the
/// apiserver refuses a CEL rule that parses a string of unbounded length (its cost
/// estimate is over budget), and standalone mode must refuse what the apiserver does.
pub const DURATION_MAX_LEN: usize = 256;

/// The units of a duration and their length in seconds. A part's seconds are
/// `number * factor`, summed in order as `f64`: the CRDs' CEL rules compute the same sum.
pub const DURATION_UNITS: [(&str, f64); 5] = [
    ("ms", 0.001),
    ("s", 1.0),
    ("m", 60.0),
    ("h", 3600.0),
    ("d", 86400.0),
];

/// A duration kvop does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not `<number><unit>` parts.
    #[error("invalid duration {text:?}: use e.g. 250ms, 90s, 1h30m, 30d")]
    Malformed { text: String },
    /// Longer text than the CRDs allow (the text itself is not repeated).
    #[error("invalid duration: longer than {DURATION_MAX_LEN} characters")]
    TooManyCharacters,
    /// Longer than NATS stores.
    #[error("{}", too_long_message(.text))]
    TooLong { text: String },
}

/// Parses a duration made of `<number><unit>` parts with units `ms`, `s`, `m`, `h`, `d`,
/// at most [`MAX_DURATION`] and [`DURATION_MAX_LEN`] characters.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let invalid = || DurationError::Malformed {
        text: text.to_string(),
    };
    if text.is_empty() {
        return Err(invalid());
    }
    if text.len() > DURATION_MAX_LEN {
        return Err(DurationError::TooManyCharacters);
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let number: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (_, seconds) = DURATION_UNITS
            .iter()
            .find(|(unit, _)| *unit == &rest[..unit_len])
            .ok_or_else(invalid)?;
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    // Every part is well-formed here, so a total that no Duration holds is too long.
    match Duration::try_from_secs_f64(total) {
        Ok(duration) if duration <= MAX_DURATION => Ok(duration),
        _ => Err(DurationError::TooLong {
            text: text.to_string(),
        }),
    }
}

/// What kvop says of a duration longer than NATS stores.
pub fn too_long_message(text: &str) -> String {
    format!(
        "invalid duration \"{text}\": longer than NATS can store ({}, nanoseconds in 64 bits)",
        format_duration(Duration::from_secs(MAX_DURATION.as_secs()))
    )
}

/// What kvop says of a duration shorter than a setting's `minimum`.
pub fn too_short_message(text: &str, minimum: Duration) -> String {
    format!(
        "\"{text}\" is shorter than the minimum of {}",
        format_duration(minimum)
    )
}

/// The smallest `f64` sum of seconds that [`parse_duration`] reads as at least `minimum`
/// (it rounds to the nanosecond): the CEL rules compare their sum with it.
pub fn least_seconds_reaching(minimum: Duration) -> f64 {
    let reaches = |seconds: f64| Duration::try_from_secs_f64(seconds).is_ok_and(|d| d >= minimum);
    // Positive floats sort like their bits: bisect between 0 (never reaches a positive
    // minimum) and twice the minimum (always does).
    boundary(0.0, minimum.as_secs_f64() * 2.0, reaches)
}

/// The largest `f64` sum of seconds that [`parse_duration`] accepts (at most
/// [`MAX_DURATION`]).
pub fn most_seconds_stored() -> f64 {
    let too_long = |seconds: f64| {
        Duration::try_from_secs_f64(seconds).map_or(true, |duration| duration > MAX_DURATION)
    };
    let first_too_long = boundary(MAX_DURATION.as_secs_f64() / 2.0, f64::MAX, too_long);
    f64::from_bits(first_too_long.to_bits() - 1)
}

/// The smallest float in `(low, high]` for which `holds` is true, given that it is false
/// at `low`, true at `high` and changes once in between.
fn boundary(low: f64, high: f64, holds: impl Fn(f64) -> bool) -> f64 {
    let (mut low, mut high) = (low.to_bits(), high.to_bits());
    debug_assert!(!holds(f64::from_bits(low)) && holds(f64::from_bits(high)));
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if holds(f64::from_bits(middle)) {
            high = middle;
        } else {
            low = middle;
        }
    }
    f64::from_bits(high)
}

/// Formats a duration the way `parse_duration` reads it, shortest form first (`30d`,
/// `1h30m`, `250ms`).
pub fn format_duration(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".into();
    }
    let millis = duration.as_millis();
    if !millis.is_multiple_of(1000) {
        return format!("{millis}ms");
    }
    let mut seconds = duration.as_secs();
    let mut text = String::new();
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if seconds >= size {
            text.push_str(&format!("{}{unit}", seconds / size));
            seconds %= size;
        }
    }
    text
}

/// A byte size kvop does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("invalid size {bytes}: must not be negative")]
    Negative { bytes: i32 },
    /// Neither bytes nor a quantity.
    #[error("invalid size {text:?}: use bytes or a quantity such as 1Mi, 10G")]
    Malformed { text: String },
    /// More than a signed 64-bit integer, which is how the server keeps sizes.
    #[error(
        "invalid size {text:?}: more than the largest size NATS stores ({} bytes)",
        i64::MAX
    )]
    TooLarge { text: String },
}

/// Parses a byte size given as an integer or a Kubernetes quantity (`1Mi`, `10G`, `512k`).
pub fn parse_size(value: &IntOrString) -> Result<i64, SizeError> {
    match value {
        IntOrString::Int(bytes) if *bytes >= 0 => Ok(i64::from(*bytes)),
        IntOrString::Int(bytes) => Err(SizeError::Negative { bytes: *bytes }),
        IntOrString::String(text) => parse_quantity(text),
    }
}

fn parse_quantity(text: &str) -> Result<i64, SizeError> {
    let invalid = || SizeError::Malformed {
        text: text.to_string(),
    };
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits == 0 {
        return Err(invalid());
    }
    let number: i64 = text[..digits].parse().map_err(|_| invalid())?;
    let multiplier: i64 = match &text[digits..] {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "E" => 1_000_000_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        _ => return Err(invalid()),
    };
    // The server keeps sizes as signed 64-bit integers.
    number
        .checked_mul(multiplier)
        .ok_or_else(|| SizeError::TooLarge {
            text: text.to_string(),
        })
}

/// Formats bytes in binary units when exact (`1Mi`), else as a plain number.
pub fn format_size(bytes: i64) -> String {
    for (unit, size) in [
        ("Ei", 1i64 << 60),
        ("Pi", 1 << 50),
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ] {
        if bytes >= size && bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit_and_combination() {
        for (text, seconds) in [
            ("90s", 90.0),
            ("1h30m", 5400.0),
            ("30d", 2_592_000.0),
            ("250ms", 0.25),
            ("1.5h", 5400.0),
            ("1d2h3m4s", 93784.0),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs_f64(seconds)),
                "{text}"
            );
        }
    }

    #[test]
    fn durations_longer_than_nats_stores_are_refused() {
        assert!(parse_duration("106751d").is_ok());
        for text in ["106752d", "99999999999d", "300000000h"] {
            let error = parse_duration(text).expect_err(text);
            assert_eq!(error, DurationError::TooLong { text: text.into() });
            assert!(
                error.to_string().contains("longer than NATS can store"),
                "{error}"
            );
        }
    }

    #[test]
    fn sizes_up_to_exabytes_parse_and_overflow_is_refused() {
        let size = |text: &str| parse_size(&IntOrString::String(text.into()));
        assert_eq!(size("1E"), Ok(1_000_000_000_000_000_000));
        assert_eq!(size("7Ei"), Ok(7 << 60));
        assert_eq!(size("3Pi"), Ok(3 << 50));
        assert_eq!(size("2P"), Ok(2_000_000_000_000_000));
        assert_eq!(format_size(7 << 60), "7Ei");
        let overflow = size("8Ei").expect_err("overflow");
        assert_eq!(overflow, SizeError::TooLarge { text: "8Ei".into() });
        assert!(overflow.to_string().contains("largest size"), "{overflow}");
        assert!(size("10E").is_err());
    }

    #[test]
    fn the_cel_bounds_are_where_parsing_changes_its_answer() {
        let before = |seconds: f64| f64::from_bits(seconds.to_bits() - 1);
        for minimum in [Duration::from_millis(100), Duration::from_secs(1)] {
            let least = least_seconds_reaching(minimum);
            assert!(Duration::try_from_secs_f64(least).expect("fits") >= minimum);
            assert!(Duration::try_from_secs_f64(before(least)).expect("fits") < minimum);
        }
        let most = most_seconds_stored();
        assert!(Duration::try_from_secs_f64(most).expect("fits") <= MAX_DURATION);
        let after = f64::from_bits(most.to_bits() + 1);
        assert!(Duration::try_from_secs_f64(after).is_ok_and(|d| d > MAX_DURATION));
    }

    #[test]
    fn durations_longer_than_the_crd_allows_are_refused() {
        let longest = format!("{}s", "0".repeat(DURATION_MAX_LEN - 2) + "1");
        assert_eq!(parse_duration(&longest), Ok(Duration::from_secs(1)));
        let error = parse_duration(&format!("0{longest}")).expect_err("too long");
        assert_eq!(
            error.to_string(),
            "invalid duration: longer than 256 characters"
        );
    }

    #[test]
    fn malformed_durations_are_rejected() {
        for text in ["", "10", "s", "10x", "1h30", "-5s", "1..5s", "10 s"] {
            assert_eq!(
                parse_duration(text),
                Err(DurationError::Malformed { text: text.into() }),
                "{text:?} should be rejected"
            );
        }
    }

    #[test]
    fn durations_format_back_to_what_they_parse_from() {
        for text in ["30d", "1h30m", "250ms", "90s", "1d2h3m4s"] {
            let duration = parse_duration(text).expect("valid");
            assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    }

    #[test]
    fn sizes_accept_integers_and_quantities() {
        for (value, bytes) in [
            (IntOrString::Int(1024), 1024),
            (IntOrString::String("1Mi".into()), 1 << 20),
            (IntOrString::String("10G".into()), 10_000_000_000),
            (IntOrString::String("512".into()), 512),
            (IntOrString::String("4Ki".into()), 4096),
        ] {
            assert_eq!(parse_size(&value), Ok(bytes), "{value:?}");
        }
        for bad in ["", "Mi", "1.5Mi", "1mb", "-1", "99999999999Ti"] {
            assert!(
                parse_size(&IntOrString::String(bad.into())).is_err(),
                "{bad:?}"
            );
        }
        assert!(parse_size(&IntOrString::Int(-1)).is_err());
        assert_eq!(format_size(1 << 20), "1Mi");
        assert_eq!(format_size(1000), "1000");
    }
}
