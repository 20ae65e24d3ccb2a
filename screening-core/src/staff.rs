//! The staff who sign in to the web app, and what each role may do.
//!
//! How they prove who they are (a password today, NHS CIS2 later) is the web app's business; the
//! domain only knows users, their usernames and their roles.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::UserId;

/// What a member of staff may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    /// Clinic staff: clinics, appointments, sending to the modality.
    Staff,
    /// Everything staff do, plus the admin of messages, gateways and credentials.
    Admin,
}

impl StaffRole {
    /// Every role.
    pub const ALL: [StaffRole; 2] = [StaffRole::Staff, StaffRole::Admin];

    /// The stored code.
    pub const fn code(self) -> &'static str {
        match self {
            StaffRole::Staff => "staff",
            StaffRole::Admin => "admin",
        }
    }

    /// Whether the role may use the admin pages.
    pub const fn is_admin(self) -> bool {
        matches!(self, StaffRole::Admin)
    }
}

impl fmt::Display for StaffRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A role code that is neither `staff` nor `admin`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: use staff or admin")]
pub struct UnknownRole(pub String);

impl FromStr for StaffRole {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|role| role.code() == s.trim())
            .ok_or_else(|| UnknownRole(s.chars().take(32).collect()))
    }
}

/// A sign-in name: 3 to 64 characters of `a-z 0-9 . _ @ -`, kept in lower case so that
/// `J.Smith@nhs.net` and `j.smith@nhs.net` are one person.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

/// Why a username was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    /// Fewer than 3 or more than 64 characters.
    #[error("a username has 3 to 64 characters")]
    Length,
    /// A character outside `a-z 0-9 . _ @ -`.
    #[error("a username may only contain letters, digits and . _ @ - (found {0:?})")]
    Character(char),
}

impl Username {
    /// Parses and normalises a username.
    pub fn parse(input: &str) -> Result<Self, UsernameError> {
        let name = input.trim().to_lowercase();
        if !(3..=64).contains(&name.chars().count()) {
            return Err(UsernameError::Length);
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "._@-".contains(*c)))
        {
            return Err(UsernameError::Character(bad));
        }
        Ok(Self(name))
    }

    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Username {
    type Error = UsernameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Username> for String {
    fn from(value: Username) -> Self {
        value.0
    }
}

impl FromStr for Username {
    type Err = UsernameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A member of staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffUser {
    /// Stable id.
    pub id: UserId,
    /// What they sign in with.
    pub username: Username,
    /// How pages greet them and audit events name them.
    pub display_name: String,
    /// What they may do.
    pub role: StaffRole,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_username_is_trimmed_and_lower_cased() {
        let name = Username::parse("  J.Smith@NHS.net ").unwrap();
        assert_eq!(name.as_str(), "j.smith@nhs.net");
    }

    #[test]
    fn a_username_that_is_too_short_or_long_is_rejected() {
        assert_eq!(Username::parse("ab"), Err(UsernameError::Length));
        assert_eq!(Username::parse(&"a".repeat(65)), Err(UsernameError::Length));
    }

    #[test]
    fn a_username_with_a_space_or_symbol_is_rejected() {
        assert_eq!(
            Username::parse("jo smith"),
            Err(UsernameError::Character(' '))
        );
        assert_eq!(Username::parse("jo<b>"), Err(UsernameError::Character('<')));
    }

    #[test]
    fn roles_round_trip_through_their_codes_and_only_admins_administer() {
        for role in StaffRole::ALL {
            assert_eq!(role.code().parse::<StaffRole>(), Ok(role));
        }
        assert!(StaffRole::Admin.is_admin());
        assert!(!StaffRole::Staff.is_admin());
        assert!("root".parse::<StaffRole>().is_err());
    }
}
