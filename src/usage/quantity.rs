//! Exact decimal quantities. Every value, limit and count is held as an integer number of
//! millionths (6 fractional digits), so a million events of 0.1 sum to exactly 100000.
//! Values are parsed from the JSON number's own text, never through a float.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Millionths in one unit.
pub const SCALE: i64 = 1_000_000;
/// Largest whole value a single event, limit or count may carry (keeps sums within i64).
pub const MAX_UNITS: i64 = 1_000_000_000_000;

/// A finite, non-negative decimal with at most 6 fractional digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Quantity(i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("must be a JSON number")]
    NotANumber,
    #[error("must not be negative")]
    Negative,
    #[error("has more than 6 fractional digits")]
    TooPrecise,
    #[error("is larger than 1000000000000")]
    TooLarge,
}

impl Quantity {
    pub const ZERO: Quantity = Quantity(0);
    pub const ONE: Quantity = Quantity(SCALE);

    pub const fn from_micros(micros: i64) -> Self {
        Quantity(micros)
    }

    pub const fn micros(self) -> i64 {
        self.0
    }

    pub const fn from_units(units: i64) -> Self {
        Quantity(units * SCALE)
    }

    pub fn checked_add(self, other: Quantity) -> Option<Quantity> {
        self.0.checked_add(other.0).map(Quantity)
    }

    pub fn saturating_sub(self, other: Quantity) -> Quantity {
        Quantity((self.0 - other.0).max(0))
    }

    /// Parses the text of a JSON number (`12`, `0.5`, `1.5e3`) exactly.
    pub fn parse_json_number(text: &str) -> Result<Quantity, QuantityError> {
        let bytes = text.as_bytes();
        let (negative, body) = match bytes.first() {
            Some(b'-') => (true, &bytes[1..]),
            Some(b'0'..=b'9') => (false, bytes),
            _ => return Err(QuantityError::NotANumber),
        };
        // Split mantissa and exponent.
        let (mantissa, exponent) = match body.iter().position(|b| *b == b'e' || *b == b'E') {
            Some(at) => {
                let exp_text =
                    std::str::from_utf8(&body[at + 1..]).map_err(|_| QuantityError::NotANumber)?;
                let exp: i64 = exp_text.parse().map_err(|_| QuantityError::NotANumber)?;
                (&body[..at], exp)
            }
            None => (body, 0),
        };
        let (int_part, frac_part) = match mantissa.iter().position(|b| *b == b'.') {
            Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
            None => (mantissa, &[][..]),
        };
        if int_part.is_empty()
            || !int_part.iter().all(u8::is_ascii_digit)
            || !frac_part.iter().all(u8::is_ascii_digit)
        {
            return Err(QuantityError::NotANumber);
        }
        if int_part.iter().chain(frac_part).all(|d| *d == b'0') {
            return Ok(Quantity::ZERO);
        }
        if negative {
            return Err(QuantityError::Negative);
        }
        // Trailing fractional zeros and leading integer zeros do not change the value.
        let frac_end = frac_part
            .iter()
            .rposition(|d| *d != b'0')
            .map_or(0, |at| at + 1);
        let frac_part = &frac_part[..frac_end];
        let int_start = int_part
            .iter()
            .position(|d| *d != b'0')
            .unwrap_or(int_part.len());
        let int_part = &int_part[int_start..];
        let mut significant: Vec<u8> = int_part.iter().chain(frac_part).copied().collect();
        // Trailing zeros of the digits move into the exponent: `10e-7` is one millionth.
        let trailing_zeros = significant.iter().rev().take_while(|d| **d == b'0').count();
        significant.truncate(significant.len() - trailing_zeros);
        // value = digits × 10^(power - 6), in millionths: digits × 10^power.
        let power = exponent
            .saturating_sub(frac_part.len() as i64)
            .saturating_add(trailing_zeros as i64)
            .saturating_add(6);
        if power < 0 {
            return Err(QuantityError::TooPrecise);
        }
        let first_nonzero = significant.iter().position(|d| *d != b'0').unwrap_or(0);
        let digit_count = (significant.len() - first_nonzero) as i64;
        // MAX_UNITS in millionths has 19 digits.
        if digit_count.saturating_add(power) > 19 {
            return Err(QuantityError::TooLarge);
        }
        let mut micros: i128 = 0;
        for digit in &significant[first_nonzero..] {
            micros = micros * 10 + i128::from(digit - b'0');
        }
        micros *= 10_i128.pow(power as u32);
        if micros > i128::from(MAX_UNITS) * i128::from(SCALE) {
            return Err(QuantityError::TooLarge);
        }
        Ok(Quantity(micros as i64))
    }
}

impl std::fmt::Display for Quantity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let whole = self.0 / SCALE;
        let frac = self.0 % SCALE;
        if frac == 0 {
            write!(f, "{whole}")
        } else {
            let frac = format!("{frac:06}");
            write!(f, "{whole}.{}", frac.trim_end_matches('0'))
        }
    }
}

/// Whole quantities serialize as JSON integers (exact at any size); fractional ones as the
/// nearest float, whose shortest form is the exact decimal up to 15 significant digits.
impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 % SCALE == 0 {
            serializer.serialize_i64(self.0 / SCALE)
        } else {
            serializer.serialize_f64(self.0 as f64 / SCALE as f64)
        }
    }
}

/// Deserializes from the number's text, so it needs a self-describing JSON source.
impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw: &serde_json::value::RawValue = Deserialize::deserialize(deserializer)?;
        Quantity::parse_json_number(raw.get()).map_err(serde::de::Error::custom)
    }
}

/// As answered: a usage may sum past what one value may be.
impl utoipa::PartialSchema for Quantity {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Number)
            .minimum(Some(0))
            .description(Some(
                "Non-negative decimal with at most 6 fractional digits",
            ))
            .into()
    }
}

impl Quantity {
    /// What `parse_json_number` accepts: a value, limit or price that the API takes in.
    pub fn input_schema(description: &str) -> utoipa::openapi::schema::Object {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Number)
            .minimum(Some(0))
            .maximum(Some(MAX_UNITS))
            .description(Some(description))
            .build()
    }
}

impl utoipa::ToSchema for Quantity {}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Quantity, QuantityError> {
        Quantity::parse_json_number(text)
    }

    #[test]
    fn parses_integers_fractions_and_exponents_exactly() {
        assert_eq!(parse("12"), Ok(Quantity::from_units(12)));
        assert_eq!(parse("0.1"), Ok(Quantity::from_micros(100_000)));
        assert_eq!(parse("0.000001"), Ok(Quantity::from_micros(1)));
        assert_eq!(parse("1.5e3"), Ok(Quantity::from_units(1500)));
        assert_eq!(parse("25E-1"), Ok(Quantity::from_micros(2_500_000)));
        assert_eq!(parse("0"), Ok(Quantity::ZERO));
        assert_eq!(parse("-0"), Ok(Quantity::ZERO));
        assert_eq!(parse("1.2300000"), Ok(Quantity::from_micros(1_230_000)));
        // Found by the property tests: trailing zeros before a negative exponent.
        assert_eq!(parse("10e-7"), Ok(Quantity::from_micros(1)));
        assert_eq!(parse("1000e-9"), Ok(Quantity::from_micros(1)));
    }

    #[test]
    fn rejects_what_is_not_an_exact_non_negative_decimal() {
        assert_eq!(parse("-1"), Err(QuantityError::Negative));
        assert_eq!(parse("0.0000001"), Err(QuantityError::TooPrecise));
        assert_eq!(parse("1e-7"), Err(QuantityError::TooPrecise));
        assert_eq!(parse("\"1\""), Err(QuantityError::NotANumber));
        assert_eq!(parse("true"), Err(QuantityError::NotANumber));
        assert_eq!(parse("null"), Err(QuantityError::NotANumber));
        assert_eq!(parse("1e400"), Err(QuantityError::TooLarge));
        assert_eq!(parse("1000000000001"), Err(QuantityError::TooLarge));
        assert_eq!(parse("1000000000000"), Ok(Quantity::from_units(MAX_UNITS)));
        assert_eq!(
            parse("99999999999999999999999999999999999"),
            Err(QuantityError::TooLarge)
        );
    }

    #[test]
    fn a_million_tenths_sum_to_exactly_one_hundred_thousand() {
        let tenth = parse("0.1").unwrap();
        let total = (0..1_000_000).fold(Quantity::ZERO, |acc, _| acc.checked_add(tenth).unwrap());
        assert_eq!(total, Quantity::from_units(100_000));
        assert_eq!(serde_json::to_string(&total).unwrap(), "100000");
    }

    #[test]
    fn displays_and_serializes_without_trailing_zeros() {
        assert_eq!(Quantity::from_micros(1_500_000).to_string(), "1.5");
        assert_eq!(
            serde_json::to_string(&Quantity::from_micros(1_500_000)).unwrap(),
            "1.5"
        );
        assert_eq!(Quantity::from_units(3).to_string(), "3");
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        const MAX_MICROS: i64 = MAX_UNITS * SCALE;

        proptest! {
            #[test]
            fn a_quantity_reads_back_from_its_text(micros in 0..=MAX_MICROS) {
                let quantity = Quantity::from_micros(micros);
                prop_assert_eq!(parse(&quantity.to_string()), Ok(quantity));
            }

            #[test]
            fn every_spelling_of_a_value_reads_the_same(
                micros in 0..=MAX_MICROS,
                leading_zeros in 0usize..4,
                trailing_zeros in 0usize..4,
                shift in 0i64..12,
            ) {
                let expected = Quantity::from_micros(micros);
                // micros × 10^-6, written as (micros × 10^shift) e-(6 + shift), padded.
                let digits = format!("{micros}{}", "0".repeat(shift as usize));
                let padded = format!("{}{digits}", "0".repeat(leading_zeros));
                prop_assert_eq!(parse(&format!("{padded}e-{}", 6 + shift)), Ok(expected));
                let text = expected.to_string();
                let with_zeros = if text.contains('.') {
                    format!("{text}{}", "0".repeat(trailing_zeros))
                } else {
                    format!("{text}.{}", "0".repeat(trailing_zeros + 1))
                };
                prop_assert_eq!(parse(&with_zeros), Ok(expected));
            }

            #[test]
            fn sums_are_exact(values in proptest::collection::vec(0..=SCALE * 1_000, 1..200)) {
                let parsed = values
                    .iter()
                    .map(|micros| parse(&Quantity::from_micros(*micros).to_string()).unwrap())
                    .fold(Quantity::ZERO, |sum, q| sum.checked_add(q).unwrap());
                prop_assert_eq!(parsed.micros(), values.iter().sum::<i64>());
            }

            #[test]
            fn an_answer_reads_back_as_the_same_quantity(micros in 0..1_000_000_000_000_000i64) {
                // Up to 15 significant digits, the float an answer carries is exact.
                let quantity = Quantity::from_micros(micros);
                let json = serde_json::to_string(&quantity).unwrap();
                prop_assert_eq!(parse(&json), Ok(quantity));
            }

            #[test]
            fn any_text_is_read_or_refused_never_more(text in "[-+0-9.eE]{0,40}|\\PC{0,40}") {
                if let Ok(quantity) = parse(&text) {
                    prop_assert!((0..=MAX_MICROS).contains(&quantity.micros()));
                }
            }

            #[test]
            fn too_precise_values_are_refused(micros in 1..=MAX_UNITS, extra in 1u32..9) {
                // `micros` millionths divided by 10^extra: exact only when it divides.
                let text = format!("{micros}e-{}", 6 + extra);
                let divides = micros % 10_i64.pow(extra) == 0;
                prop_assert_eq!(parse(&text).is_ok(), divides);
            }
        }
    }
}
