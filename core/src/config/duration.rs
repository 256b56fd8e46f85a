//! Human durations as written in cluster.toml: `"500ms"`, `"2s"`, `"1m30s"`.
//!
//! A bare number is refused on purpose: Heartbeat read `10` as seconds and `10ms`
//! as milliseconds, and a config that silently means something else is worse than
//! one that does not load.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration with millisecond resolution, written with units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(Duration);

impl HumanDuration {
    pub const fn from_millis(ms: u64) -> Self {
        HumanDuration(Duration::from_millis(ms))
    }
    pub const fn from_secs(s: u64) -> Self {
        HumanDuration(Duration::from_secs(s))
    }
    pub const fn get(self) -> Duration {
        self.0
    }
    pub fn as_millis(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }
}

impl From<HumanDuration> for Duration {
    fn from(d: HumanDuration) -> Duration {
        d.0
    }
}

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration: write it with a unit, like \"2s\" or \"500ms\"")]
    Empty,
    #[error("\"{0}\" has no unit: write \"{0}s\" for seconds or \"{0}ms\" for milliseconds")]
    NoUnit(String),
    #[error("unknown unit \"{unit}\" in \"{text}\": use ms, s, m or h")]
    BadUnit { text: String, unit: String },
    #[error("\"{0}\" is not a duration: expected a number followed by ms, s, m or h, like \"2s\"")]
    Malformed(String),
    #[error("\"{0}\" is too long")]
    Overflow(String),
}

impl FromStr for HumanDuration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let s = text.trim();
        if s.is_empty() {
            return Err(DurationError::Empty);
        }
        if s.chars().all(|c| c.is_ascii_digit()) {
            return Err(DurationError::NoUnit(s.to_string()));
        }
        let mut total: u64 = 0;
        let mut rest = s;
        while !rest.is_empty() {
            rest = rest.trim_start();
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(DurationError::Malformed(text.to_string()));
            }
            let n: u64 = rest[..digits]
                .parse()
                .map_err(|_| DurationError::Overflow(text.to_string()))?;
            rest = rest[digits..].trim_start();
            let unit_len = rest
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            let factor = match unit {
                "ms" => 1,
                "s" | "sec" => 1000,
                "m" | "min" => 60_000,
                "h" => 3_600_000,
                "" => return Err(DurationError::Malformed(text.to_string())),
                other => {
                    return Err(DurationError::BadUnit {
                        text: text.to_string(),
                        unit: other.to_string(),
                    });
                }
            };
            total = n
                .checked_mul(factor)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| DurationError::Overflow(text.to_string()))?;
            rest = &rest[unit_len..];
        }
        Ok(HumanDuration::from_millis(total))
    }
}

impl fmt::Display for HumanDuration {
    /// Canonical form, largest units first: `1h`, `1m30s`, `2s`, `1s500ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] {
            if ms >= size {
                write!(f, "{}{}", ms / size, unit)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string like \"2s\" or \"500ms\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "{v} has no unit: write \"{v}s\" for seconds or \"{v}ms\" for milliseconds (as a string)"
                )))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<HumanDuration, E> {
                self.visit_i64(v as i64)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "{v} has no unit: write durations as strings like \"1500ms\""
                )))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for HumanDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration with a unit: ms, s, m or h, e.g. \"500ms\", \"2s\", \"1m30s\".",
            "pattern": "^\\s*([0-9]+\\s*(ms|s|sec|m|min|h)\\s*)+$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_canonically() {
        for (text, ms, canon) in [
            ("500ms", 500, "500ms"),
            ("2s", 2000, "2s"),
            ("1m30s", 90_000, "1m30s"),
            ("1m 30s", 90_000, "1m30s"),
            ("1500ms", 1500, "1s500ms"),
            ("2h", 7_200_000, "2h"),
            ("0s", 0, "0s"),
        ] {
            let d: HumanDuration = text.parse().unwrap();
            assert_eq!(d.as_millis(), ms, "{text}");
            assert_eq!(d.to_string(), canon);
            assert_eq!(canon.parse::<HumanDuration>().unwrap(), d);
        }
    }

    #[test]
    fn refuses_ambiguous_and_malformed() {
        assert_eq!(
            "10".parse::<HumanDuration>(),
            Err(DurationError::NoUnit("10".into()))
        );
        assert!(matches!(
            "10x".parse::<HumanDuration>(),
            Err(DurationError::BadUnit { .. })
        ));
        assert!(matches!(
            "s".parse::<HumanDuration>(),
            Err(DurationError::Malformed(_))
        ));
        assert!(matches!(
            "".parse::<HumanDuration>(),
            Err(DurationError::Empty)
        ));
        assert!(matches!(
            "99999999999999999999h".parse::<HumanDuration>(),
            Err(DurationError::Overflow(_))
        ));
    }
}
