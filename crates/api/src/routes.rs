//! Request routing: one `Operation` per model operation Sesame implements, plus `Unsupported`
//! for the rest of the model, resolved from the method and the raw (still percent-encoded)
//! path against the model's URI templates.

use crate::errors::EdgeError;
use crate::limits::{MAX_BODY_BYTES, MAX_SEND_BODY_BYTES, MAX_TEMPLATE_BODY_BYTES};
use crate::model_routes::MODEL_ROUTES;
use percent_encoding::percent_decode_str;

/// Whether an operation changes anything (a write, key generation, mail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

/// Declares `Operation` and everything known per operation from one row each, so that a new
/// operation is one row and no per-operation list can miss it. Routes come from the model
/// (`MODEL_ROUTES`), by the operation's name.
macro_rules! operations {
    ($($(#[$doc:meta])* $op:ident { access: $access:ident, max_body: $max_body:expr } ,)*) => {
        /// The operations Sesame implements, named as in the model.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Operation {
            $($(#[$doc])* $op,)*
            /// Any other operation of the model, by name; answered with a clear error.
            Unsupported(&'static str),
        }

        impl Operation {
            /// Every operation Sesame implements.
            pub const IMPLEMENTED: &[Operation] = &[$(Operation::$op,)*];

            fn from_name(name: &'static str) -> Operation {
                match name {
                    $(stringify!($op) => Operation::$op,)*
                    other => Operation::Unsupported(other),
                }
            }

            /// The model's name of the operation.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Operation::$op => stringify!($op),)*
                    Operation::Unsupported(name) => name,
                }
            }

            fn access(&self) -> Access {
                match self {
                    $(Operation::$op => Access::$access,)*
                    Operation::Unsupported(_) => Access::Write,
                }
            }

            /// The largest request body the operation accepts: SendEmail carries whole
            /// messages (40 MB, base64 in JSON); everything else is small.
            pub fn max_body_bytes(&self) -> usize {
                match self {
                    $(Operation::$op => $max_body,)*
                    Operation::Unsupported(_) => MAX_BODY_BYTES,
                }
            }
        }
    };
}

operations! {
    /// `POST /v2/email/identities`
    CreateEmailIdentity { access: Write, max_body: MAX_BODY_BYTES },
    /// `GET /v2/email/identities/{EmailIdentity}`
    GetEmailIdentity { access: Read, max_body: MAX_BODY_BYTES },
    /// `POST /v2/email/list-identities`, or the legacy `GET /v2/email/identities`.
    ListEmailIdentities { access: Read, max_body: MAX_BODY_BYTES },
    /// `DELETE /v2/email/identities/{EmailIdentity}`
    DeleteEmailIdentity { access: Write, max_body: MAX_BODY_BYTES },
    /// `PUT /v2/email/identities/{EmailIdentity}/dkim`
    PutEmailIdentityDkimAttributes { access: Write, max_body: MAX_BODY_BYTES },
    /// `PUT /v2/email/identities/{EmailIdentity}/dkim/signing`
    PutEmailIdentityDkimSigningAttributes { access: Write, max_body: MAX_BODY_BYTES },
    /// `PUT /v2/email/identities/{EmailIdentity}/feedback`
    PutEmailIdentityFeedbackAttributes { access: Write, max_body: MAX_BODY_BYTES },
    /// `PUT /v2/email/identities/{EmailIdentity}/mail-from`
    PutEmailIdentityMailFromAttributes { access: Write, max_body: MAX_BODY_BYTES },
    /// `POST /v2/email/vdm/recommendations`
    ListRecommendations { access: Read, max_body: MAX_BODY_BYTES },
    /// `POST /v2/email/tags`
    TagResource { access: Write, max_body: MAX_BODY_BYTES },
    /// `DELETE /v2/email/tags`
    UntagResource { access: Write, max_body: MAX_BODY_BYTES },
    /// `GET /v2/email/tags`
    ListTagsForResource { access: Read, max_body: MAX_BODY_BYTES },
    /// `POST /v2/email/outbound-emails`
    SendEmail { access: Write, max_body: MAX_SEND_BODY_BYTES },
    /// `POST /v2/email/custom-verification-email-templates`
    CreateCustomVerificationEmailTemplate { access: Write, max_body: MAX_TEMPLATE_BODY_BYTES },
    /// `GET /v2/email/custom-verification-email-templates/{TemplateName}`
    GetCustomVerificationEmailTemplate { access: Read, max_body: MAX_BODY_BYTES },
    /// `GET /v2/email/custom-verification-email-templates`
    ListCustomVerificationEmailTemplates { access: Read, max_body: MAX_BODY_BYTES },
    /// `PUT /v2/email/custom-verification-email-templates/{TemplateName}`
    UpdateCustomVerificationEmailTemplate { access: Write, max_body: MAX_TEMPLATE_BODY_BYTES },
    /// `DELETE /v2/email/custom-verification-email-templates/{TemplateName}`
    DeleteCustomVerificationEmailTemplate { access: Write, max_body: MAX_BODY_BYTES },
    /// `POST /v2/email/outbound-custom-verification-emails`
    SendCustomVerificationEmail { access: Write, max_body: MAX_BODY_BYTES },
}

impl Operation {
    /// Whether the operation only reads (no write, no key generation, no mail).
    pub fn is_read_only(&self) -> bool {
        self.access() == Access::Read
    }
}

/// A resolved request: the operation and its decoded URI labels, in template order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The operation.
    pub operation: Operation,
    /// `(label name, decoded value)` pairs.
    pub labels: Vec<(&'static str, String)>,
}

impl Route {
    /// The decoded value of a URI label.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Resolves `method` and the raw `path` (no query). Matching happens on the encoded path, so
/// an identity like `a%2Fb@example.com` stays one segment, and labels are decoded afterwards.
/// Where several templates match, the one with the most literal segments wins
/// (`/v2/email/identities/{EmailIdentity}/dkim` beats nothing; literals beat labels).
pub fn resolve(method: &str, path: &str) -> Result<Route, EdgeError> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let mut best: Option<(usize, &'static str, &'static str)> = None;
    let mut path_known = false;
    for (name, m, template, parts) in SPLIT_ROUTES.iter() {
        let (name, m, template) = (*name, *m, *template);
        let Some(literals) = match_template(parts, &segments) else {
            continue;
        };
        path_known = true;
        if m != method {
            continue;
        }
        if best.is_none_or(|(l, _, _)| literals > l) {
            best = Some((literals, name, template));
        }
    }
    // botocore < 1.43.105 and older SDKs list identities with GET on the collection; the model
    // moved the operation to POST /v2/email/list-identities (SES-SEMANTICS.md section 2).
    if best.is_none() && method == "GET" && segments == ["", "v2", "email", "identities"] {
        return Ok(Route {
            operation: Operation::ListEmailIdentities,
            labels: vec![],
        });
    }
    let Some((_, name, template)) = best else {
        return Err(EdgeError::UnknownOperation {
            method: method.to_owned(),
            path: path.to_owned(),
            path_known,
        });
    };
    let mut labels = Vec::new();
    for (t, s) in template.trim_end_matches('/').split('/').zip(&segments) {
        if let Some(label) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            let value = percent_decode_str(s)
                .decode_utf8()
                .map_err(|_| EdgeError::BadLabel(label))?
                .into_owned();
            labels.push((label, value));
        }
    }
    Ok(Route {
        operation: Operation::from_name(name),
        labels,
    })
}

/// The model's routes with each template split into segments once, not on every request.
/// Templates are compared without a trailing slash, like paths: the model spells one
/// operation as `/v2/email/email-address-insights/`.
type SplitRoute = (&'static str, &'static str, &'static str, Vec<&'static str>);
static SPLIT_ROUTES: std::sync::LazyLock<Vec<SplitRoute>> = std::sync::LazyLock::new(|| {
    MODEL_ROUTES
        .iter()
        .map(|&(name, method, template)| {
            let parts = template.trim_end_matches('/').split('/').collect();
            (name, method, template, parts)
        })
        .collect()
});

/// The number of literal segments if the template's `parts` match `segments`.
fn match_template(parts: &[&str], segments: &[&str]) -> Option<usize> {
    if parts.len() != segments.len() {
        return None;
    }
    let mut literals = 0;
    for (t, s) in parts.iter().zip(segments) {
        if t.starts_with('{') {
            if s.is_empty() {
                return None;
            }
        } else if t == s {
            literals += 1;
        } else {
            return None;
        }
    }
    Some(literals)
}

/// Parses a query string into decoded `(name, value)` pairs, keeping repeated names (the model
/// sends lists such as `TagKeys` as repeated parameters). `+` is a space, as in HTML forms.
pub fn parse_query(query: Option<&str>) -> Result<Vec<(String, String)>, EdgeError> {
    let Some(q) = query else { return Ok(vec![]) };
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| EdgeError::BadQuery)
    };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: &str, path: &str, expected: &str, labels: &[(&str, &str)]) {
        let r = resolve(method, path).unwrap_or_else(|e| panic!("{method} {path}: {e:?}"));
        assert_eq!(r.operation.name(), expected, "{method} {path}");
        let got: Vec<(&str, &str)> = r.labels.iter().map(|(n, v)| (*n, v.as_str())).collect();
        assert_eq!(got, labels, "{method} {path}");
    }

    #[test]
    fn identity_routes() {
        check("POST", "/v2/email/identities", "CreateEmailIdentity", &[]);
        check("GET", "/v2/email/identities", "ListEmailIdentities", &[]);
        check(
            "POST",
            "/v2/email/list-identities",
            "ListEmailIdentities",
            &[],
        );
        check(
            "GET",
            "/v2/email/identities/user%2Btag%40example.com",
            "GetEmailIdentity",
            &[("EmailIdentity", "user+tag@example.com")],
        );
        check(
            "GET",
            "/v2/email/identities/a+b@example.com",
            "GetEmailIdentity",
            &[("EmailIdentity", "a+b@example.com")],
        );
        check(
            "PUT",
            "/v2/email/identities/example.com/dkim/signing",
            "PutEmailIdentityDkimSigningAttributes",
            &[("EmailIdentity", "example.com")],
        );
        check(
            "DELETE",
            "/v2/email/identities/example.com/policies/p1",
            "DeleteEmailIdentityPolicy",
            &[("EmailIdentity", "example.com"), ("PolicyName", "p1")],
        );
        check("DELETE", "/v2/email/tags", "UntagResource", &[]);
    }

    #[test]
    fn unknown_paths_and_methods() {
        assert!(matches!(
            resolve("GET", "/nope"),
            Err(EdgeError::UnknownOperation {
                path_known: false,
                ..
            })
        ));
        assert!(matches!(
            resolve("PATCH", "/v2/email/identities/x.com"),
            Err(EdgeError::UnknownOperation {
                path_known: true,
                ..
            })
        ));
        assert!(matches!(
            resolve("GET", "/v2/email/identities/%FF"),
            Err(EdgeError::BadLabel("EmailIdentity"))
        ));
    }

    #[test]
    fn query_strings_keep_repeats_and_decode() {
        let q = parse_query(Some(
            "ResourceArn=arn%3Aaws&TagKeys=a&TagKeys=b%20c&TagKeys=d+e&x",
        ))
        .unwrap();
        let got: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            [
                ("ResourceArn", "arn:aws"),
                ("TagKeys", "a"),
                ("TagKeys", "b c"),
                ("TagKeys", "d e"),
                ("x", "")
            ]
        );
    }

    /// Each row of the operations table names an operation of the model and resolves back to
    /// itself, and only SendEmail may carry a whole message.
    #[test]
    fn the_operations_table_names_model_operations() {
        for op in Operation::IMPLEMENTED {
            assert!(
                MODEL_ROUTES.iter().any(|(name, _, _)| *name == op.name()),
                "{op:?} is not in the model"
            );
            assert_eq!(Operation::from_name(op.name()), *op);
            let big = *op == Operation::SendEmail;
            assert_eq!(op.max_body_bytes() == MAX_SEND_BODY_BYTES, big, "{op:?}");
        }
        let other = Operation::from_name("CreateContactList");
        assert_eq!(other, Operation::Unsupported("CreateContactList"));
        assert!(!other.is_read_only());
        assert_eq!(other.max_body_bytes(), MAX_BODY_BYTES);
        let reads: Vec<&str> = Operation::IMPLEMENTED
            .iter()
            .filter(|op| op.is_read_only())
            .map(|op| op.name())
            .collect();
        assert_eq!(
            reads,
            [
                "GetEmailIdentity",
                "ListEmailIdentities",
                "ListRecommendations",
                "ListTagsForResource",
                "GetCustomVerificationEmailTemplate",
                "ListCustomVerificationEmailTemplates"
            ]
        );
    }

    /// Every `(method, requestUri)` of the model, with its labels filled in, resolves to that
    /// very operation: checked against the facts file derived from the model, not this table.
    #[test]
    fn every_model_route_resolves_to_its_operation() {
        let facts: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/data/model-facts.json")).unwrap();
        let ops = facts["operations"].as_array().unwrap();
        assert_eq!(ops.len(), MODEL_ROUTES.len());
        for op in ops {
            let name = op["name"].as_str().unwrap();
            let method = op["method"].as_str().unwrap();
            let uri = op["uri"].as_str().unwrap();
            let path: Vec<String> = uri
                .split('/')
                .map(|s| {
                    if s.starts_with('{') {
                        "label%40x.com".to_owned()
                    } else {
                        s.to_owned()
                    }
                })
                .collect();
            let r = resolve(method, &path.join("/")).unwrap();
            assert_eq!(r.operation.name(), name, "{method} {uri}");
            assert!(r.labels.iter().all(|(_, v)| v == "label@x.com"));
        }
    }
}
