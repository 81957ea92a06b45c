//! Durations (`90s`, `1h30m`, `30d`) and byte sizes (`1048576`, `1Mi`, `10G`) of manifests.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The longest duration NATS stores: nanoseconds in an i64 (about 292 years). A longer
/// one is stored wrapped, and then differs from the manifest on every run.
pub const MAX_DURATION: Duration = Duration::from_nanos(i64::MAX as u64);

/// Parses a duration made of `<number><unit>` parts with units `ms`, `s`, `m`, `h`, `d`,
/// at most [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {text:?}: use e.g. 250ms, 90s, 1h30m, 30d");
    if text.is_empty() {
        return Err(invalid());
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
        let seconds = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(invalid()),
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    let duration = Duration::try_from_secs_f64(total).map_err(|_| invalid())?;
    if duration > MAX_DURATION {
        return Err(format!(
            "invalid duration {text:?}: longer than NATS can store ({}, nanoseconds in 64 bits)",
            format_duration(Duration::from_secs(MAX_DURATION.as_secs()))
        ));
    }
    Ok(duration)
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

/// Parses a byte size given as an integer or a Kubernetes quantity (`1Mi`, `10G`, `512k`).
pub fn parse_size(value: &IntOrString) -> Result<i64, String> {
    match value {
        IntOrString::Int(bytes) if *bytes >= 0 => Ok(i64::from(*bytes)),
        IntOrString::Int(bytes) => Err(format!("invalid size {bytes}: must not be negative")),
        IntOrString::String(text) => parse_quantity(text),
    }
}

fn parse_quantity(text: &str) -> Result<i64, String> {
    let invalid = || format!("invalid size {text:?}: use bytes or a quantity such as 1Mi, 10G");
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
    number.checked_mul(multiplier).ok_or_else(|| {
        format!(
            "invalid size {text:?}: more than the largest size NATS stores ({} bytes)",
            i64::MAX
        )
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
            assert!(error.contains("longer than NATS can store"), "{error}");
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
        assert!(size("8Ei").expect_err("overflow").contains("largest size"));
        assert!(size("10E").is_err());
    }

    #[test]
    fn malformed_durations_are_rejected() {
        for text in ["", "10", "s", "10x", "1h30", "-5s", "1..5s", "10 s"] {
            assert!(parse_duration(text).is_err(), "{text:?} should be rejected");
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
