//! The NHS number: ten digits whose last is a Modulus 11 check digit.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A parsed, check-digit-verified NHS number.
///
/// `Debug` prints the masked form so a number never leaks into logs by accident;
/// `Display` prints the full number grouped as the NHS shows it (`943 476 5919`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NhsNumber([u8; 10]);

/// Why a string is not an NHS number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NhsNumberError {
    /// Not exactly ten digits once separators are removed.
    #[error("an NHS number has 10 digits, this has {found}")]
    WrongLength {
        /// How many digits there were.
        found: usize,
    },
    /// A character that is neither a digit nor an allowed separator (space or hyphen).
    #[error("an NHS number contains only digits, spaces and hyphens; found {character:?} at position {position}")]
    NonDigit {
        /// The character.
        character: char,
        /// Where it is (0-based, in characters).
        position: usize,
    },
    /// The Modulus 11 check gives 10, which no valid NHS number can have.
    #[error("the first nine digits give check digit 10, so this is not a valid NHS number")]
    CheckDigitIsTen,
    /// The tenth digit is not the check digit of the first nine.
    #[error("the check digit should be {expected} but is {found}")]
    CheckDigitMismatch {
        /// The check digit of the first nine digits.
        expected: u8,
        /// The tenth digit given.
        found: u8,
    },
}

impl NhsNumber {
    /// Parses ten digits, optionally separated by spaces or hyphens, and verifies the check digit.
    pub fn parse(input: &str) -> Result<Self, NhsNumberError> {
        let mut digits = [0u8; 10];
        let mut count = 0usize;
        for (position, character) in input.trim().chars().enumerate() {
            match character {
                ' ' | '-' => continue,
                '0'..='9' => {
                    if count < 10 {
                        digits[count] = character as u8 - b'0';
                    }
                    count += 1;
                }
                _ => {
                    return Err(NhsNumberError::NonDigit {
                        character,
                        position,
                    })
                }
            }
        }
        if count != 10 {
            return Err(NhsNumberError::WrongLength { found: count });
        }
        let expected = match check_digit(&digits[..9]) {
            Some(digit) => digit,
            None => return Err(NhsNumberError::CheckDigitIsTen),
        };
        if expected != digits[9] {
            return Err(NhsNumberError::CheckDigitMismatch {
                expected,
                found: digits[9],
            });
        }
        Ok(Self(digits))
    }

    /// The ten digits without separators, as FHIR identifiers and databases carry them.
    pub fn digits(&self) -> String {
        self.0.iter().map(|d| char::from(b'0' + d)).collect()
    }

    /// The form for logs: all but the last three digits hidden (`*******919`).
    pub fn masked(&self) -> String {
        let mut out = String::with_capacity(10);
        out.push_str("*******");
        out.extend(self.0[7..].iter().map(|d| char::from(b'0' + d)));
        out
    }

    /// Test numbers issued for development start with 999 and never belong to a real person.
    pub fn is_test_number(&self) -> bool {
        self.0[..3] == [9, 9, 9]
    }
}

/// Modulus 11: weights 10..2 over the first nine digits; 11 becomes 0 and 10 is invalid.
fn check_digit(first_nine: &[u8]) -> Option<u8> {
    let sum: u32 = first_nine
        .iter()
        .zip((2..=10).rev())
        .map(|(digit, weight)| u32::from(*digit) * weight)
        .sum();
    match 11 - (sum % 11) {
        11 => Some(0),
        10 => None,
        digit => Some(digit as u8),
    }
}

impl fmt::Display for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.digits();
        write!(f, "{} {} {}", &d[..3], &d[3..6], &d[6..])
    }
}

impl fmt::Debug for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NhsNumber({})", self.masked())
    }
}

impl FromStr for NhsNumber {
    type Err = NhsNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for NhsNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.digits())
    }
}

impl<'de> Deserialize<'de> for NhsNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Published test numbers (NHS Digital's examples and the 999 test range).
    const VALID: &[&str] = &[
        "9434765919",
        "9990001235",
        "9999999999",
        "4010232137",
        "9449306125",
        "9000000009",
    ];

    #[test]
    fn published_test_numbers_are_accepted() {
        for number in VALID {
            assert!(NhsNumber::parse(number).is_ok(), "{number} should parse");
        }
    }

    #[test]
    fn spaces_and_hyphens_are_allowed_as_separators() {
        let expected = NhsNumber::parse("9434765919").unwrap();
        assert_eq!(NhsNumber::parse("943 476 5919"), Ok(expected));
        assert_eq!(NhsNumber::parse("943-476-5919"), Ok(expected));
        assert_eq!(NhsNumber::parse(" 943 476 5919 "), Ok(expected));
    }

    #[test]
    fn display_groups_the_digits_as_the_nhs_shows_them() {
        assert_eq!(
            NhsNumber::parse("9434765919").unwrap().to_string(),
            "943 476 5919"
        );
    }

    #[test]
    fn masked_keeps_only_the_last_three_digits() {
        let number = NhsNumber::parse("9434765919").unwrap();
        assert_eq!(number.masked(), "*******919");
        assert_eq!(format!("{number:?}"), "NhsNumber(*******919)");
    }

    #[test]
    fn every_single_digit_corruption_of_a_valid_number_is_rejected() {
        let original: Vec<u8> = "9434765919".bytes().collect();
        for position in 0..10 {
            for replacement in b'0'..=b'9' {
                if replacement == original[position] {
                    continue;
                }
                let mut corrupted = original.clone();
                corrupted[position] = replacement;
                let text = String::from_utf8(corrupted).unwrap();
                let result = NhsNumber::parse(&text);
                assert!(
                    matches!(
                        result,
                        Err(NhsNumberError::CheckDigitMismatch { .. }
                            | NhsNumberError::CheckDigitIsTen)
                    ),
                    "{text} was accepted: {result:?}"
                );
            }
        }
    }

    #[test]
    fn a_number_with_nine_or_eleven_digits_is_rejected_with_its_length() {
        assert_eq!(
            NhsNumber::parse("943476591"),
            Err(NhsNumberError::WrongLength { found: 9 })
        );
        assert_eq!(
            NhsNumber::parse("94347659190"),
            Err(NhsNumberError::WrongLength { found: 11 })
        );
        assert_eq!(
            NhsNumber::parse(""),
            Err(NhsNumberError::WrongLength { found: 0 })
        );
    }

    #[test]
    fn a_letter_is_rejected_with_its_position() {
        assert_eq!(
            NhsNumber::parse("94347A5919"),
            Err(NhsNumberError::NonDigit {
                character: 'A',
                position: 5
            })
        );
    }

    #[test]
    fn a_number_whose_check_digit_would_be_ten_is_rejected() {
        // 123456789: sum = 10*1+9*2+...+2*9 = 210; 210 % 11 = 1; 11 - 1 = 10.
        assert_eq!(
            NhsNumber::parse("1234567890"),
            Err(NhsNumberError::CheckDigitIsTen)
        );
    }

    #[test]
    fn a_wrong_check_digit_names_the_expected_one() {
        assert_eq!(
            NhsNumber::parse("9434765918"),
            Err(NhsNumberError::CheckDigitMismatch {
                expected: 9,
                found: 8
            })
        );
    }

    #[test]
    fn serde_uses_the_bare_digits_and_validates_on_the_way_in() {
        let number = NhsNumber::parse("943 476 5919").unwrap();
        assert_eq!(serde_json::to_string(&number).unwrap(), "\"9434765919\"");
        assert!(serde_json::from_str::<NhsNumber>("\"9434765918\"").is_err());
    }

    #[test]
    fn numbers_in_the_999_range_are_test_numbers() {
        assert!(NhsNumber::parse("9990001235").unwrap().is_test_number());
        assert!(!NhsNumber::parse("9434765919").unwrap().is_test_number());
    }
}
