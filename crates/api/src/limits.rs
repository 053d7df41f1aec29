//! The request body limits: what the edge buffers before it has authenticated anyone.

/// The largest request body accepted. The biggest identity request is a 20,480-character
/// private key plus 50 tags; this leaves room without letting a client make us buffer much.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The largest SendEmail body: a 40 MB message is 53.4 MB in base64, plus the JSON around it.
pub const MAX_SEND_BODY_BYTES: usize = 56 * 1024 * 1024;

/// The largest body of a custom verification email template's Create or Update: SES's 10 MB
/// of content, with room for JSON's escaping of quotes and line breaks in HTML.
pub const MAX_TEMPLATE_BODY_BYTES: usize = 16 * 1024 * 1024;
