//! A posted `application/x-www-form-urlencoded` form, keeping repeated fields (route rows).

/// The fields of a posted form, in order.
#[derive(Debug, Clone, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    /// Parses a form body; malformed escapes are decoded leniently as browsers do.
    pub fn parse(body: &[u8]) -> Self {
        Self(
            form_urlencoded::parse(body)
                .map(|(key, value)| (key.into_owned(), value.into_owned()))
                .collect(),
        )
    }

    /// The first value of a field.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The first value of a field, trimmed, or "" when absent.
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or_default().trim()
    }

    /// Every value of a repeated field, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_fields_keep_their_order_and_escapes_are_decoded() {
        let form = Form::parse(b"a=1&route_type=FHIR&route_type=X%20Y&b=+two+");
        assert_eq!(form.all("route_type"), ["FHIR", "X Y"]);
        assert_eq!(form.get("a"), Some("1"));
        assert_eq!(form.text("b"), "two");
        assert_eq!(form.text("missing"), "");
    }
}
