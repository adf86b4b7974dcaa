//! Accounts: the tenant every endpoint, event and video belongs to. An account is made
//! by the operator, with a name for people to recognise it by.

/// The longest name, in characters.
pub const MAX_ACCOUNT_NAME_CHARS: usize = 255;

/// A trimmed name of 1 to 255 characters with no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountName(String);

/// A name that is empty, too long or holds control characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'name' must be 1-255 printable characters")]
pub struct InvalidAccountName;

impl AccountName {
    /// Trims surrounding whitespace, then checks what is left.
    pub fn parse(raw: &str) -> Result<Self, InvalidAccountName> {
        let name = raw.trim();
        let printable = !name.chars().any(char::is_control);
        if name.is_empty() || name.chars().count() > MAX_ACCOUNT_NAME_CHARS || !printable {
            return Err(InvalidAccountName);
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_checked() {
        assert_eq!(AccountName::parse("  acme ").expect("valid").as_str(), "acme");
        assert_eq!(AccountName::parse(&"é".repeat(255)).map(|n| n.as_str().chars().count()), Ok(255));
        for bad in ["", "   ", "a\nb", "tab\there", &"x".repeat(256)] {
            assert_eq!(AccountName::parse(bad), Err(InvalidAccountName), "{bad:?}");
        }
    }
}
