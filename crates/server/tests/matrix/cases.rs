//! Case generation: the input members of an operation, walked from the model facts, and for
//! each member every constraint of its facts broken in turn, applied to a valid base request.

use serde_json::{Map, Value, json};

/// What is wrong with a request; `expected` in `main.rs` says what each kind must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    // A member's model constraints.
    TooLong,
    TooShort,
    Pattern,
    NotInEnum,
    WrongType,
    Missing,
    Null,
    NullElement,
    NotBase64,
    // URI labels and ARNs.
    EmptyLabel,
    BadPercent,
    Unknown,
    Foreign,
    // Limits the SES documentation states and the model does not (Sesame enforces them).
    Documented,
    Exists,
    NotVerified,
    // Whole bodies.
    InvalidJson,
    InvalidUtf8,
    JsonArray,
    DeepNesting,
    DuplicateMember,
    TrailingData,
    OverSize,
    // Authentication.
    Unsigned,
    MalformedAuth,
    BadSignature,
    WrongSecret,
    UnknownKey,
    StaleSignature,
    TamperedBody,
}

/// One step from a value to a part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Field(String),
    /// The first element of a list.
    Elem,
    /// The first key of a map (renamed, never descended into).
    MapKey,
    /// The value of a map's first key.
    MapValue,
}

/// A body member reachable from an operation's input, with the facts of every step.
pub struct Member {
    /// The facts key, e.g. `Tag.Key`.
    pub name: String,
    /// Each step with the facts of what it leads to.
    pub steps: Vec<(Step, Value)>,
}

impl Member {
    pub fn facts(&self) -> &Value {
        &self.steps.last().unwrap().1
    }

    /// `Tags[0].Key`, `Filter{key}`: where the member sits in the body.
    pub fn display(&self) -> String {
        let mut s = String::new();
        for (step, _) in &self.steps {
            match step {
                Step::Field(n) if s.is_empty() => s.push_str(n),
                Step::Field(n) => {
                    s.push('.');
                    s.push_str(n);
                }
                Step::Elem => s.push_str("[0]"),
                Step::MapKey => s.push_str("{key}"),
                Step::MapValue => s.push_str("{value}"),
            }
        }
        s
    }
}

/// A change to a body.
#[derive(Debug, Clone)]
pub enum Mutation {
    Set(Value),
    Remove,
    RenameKey(String),
}

/// The facts' members whose names start with `shape.`, in the facts' (sorted) order.
fn members_of<'a>(limits: &'a Map<String, Value>, shape: &str) -> Vec<(&'a str, &'a Value)> {
    let prefix = format!("{shape}.");
    limits
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|part| (part, v)))
        .collect()
}

/// Every member of `input` (the operation's input shape), split by location: URI labels and
/// query-string members by name, body members with their paths (nested ones included).
pub struct Inputs {
    pub labels: Vec<(String, Value)>,
    pub query: Vec<(String, Value)>,
    pub body: Vec<Member>,
}

pub fn inputs(limits: &Map<String, Value>, input: &str) -> Inputs {
    let mut out = Inputs {
        labels: vec![],
        query: vec![],
        body: vec![],
    };
    for (name, f) in members_of(limits, input) {
        match f["location"].as_str() {
            Some("uri") => out.labels.push((name.to_owned(), f.clone())),
            Some("querystring") => out.query.push((name.to_owned(), f.clone())),
            _ => {
                let steps = vec![(Step::Field(name.to_owned()), f.clone())];
                walk(limits, &format!("{input}.{name}"), steps, &mut out.body);
            }
        }
    }
    out
}

fn walk(limits: &Map<String, Value>, key: &str, steps: Vec<(Step, Value)>, out: &mut Vec<Member>) {
    assert!(
        steps.len() < 12,
        "{key}: the model's shapes do not nest this deep"
    );
    let f = steps.last().unwrap().1.clone();
    out.push(Member {
        name: key.to_owned(),
        steps: steps.clone(),
    });
    let shape = f["shape"].as_str().unwrap();
    let kind = f["type"].as_str().unwrap();
    if !matches!(kind, "structure" | "list" | "map") {
        return;
    }
    for (part, mf) in members_of(limits, shape) {
        let step = match (kind, part) {
            ("list", "member") => Step::Elem,
            ("map", "key") => Step::MapKey,
            ("map", "value") => Step::MapValue,
            ("structure", name) => Step::Field(name.to_owned()),
            (k, p) => panic!("{shape}.{p}: unexpected part of a {k}"),
        };
        let mut next = steps.clone();
        next.push((step, mf.clone()));
        walk(limits, &format!("{shape}.{part}"), next, out);
    }
}

/// A valid value of a shape: required members filled in, enums their first value, strings of
/// the shortest allowed length.
pub fn sample(limits: &Map<String, Value>, f: &Value) -> Value {
    let shape = f["shape"].as_str().unwrap_or("");
    match f["type"].as_str().unwrap() {
        "structure" => {
            let mut o = Map::new();
            for (name, mf) in members_of(limits, shape) {
                if mf["required"] == true {
                    o.insert(name.to_owned(), sample(limits, mf));
                }
            }
            Value::Object(o)
        }
        "list" => json!([sample(limits, &limits[&format!("{shape}.member")])]),
        "map" => {
            let key = sample(limits, &limits[&format!("{shape}.key")]);
            let value = sample(limits, &limits[&format!("{shape}.value")]);
            json!({ key.as_str().unwrap(): value })
        }
        "string" => match f["enum"].as_array() {
            Some(e) => e[0].clone(),
            None => Value::String("a".repeat(f["min"].as_u64().unwrap_or(1).max(1) as usize)),
        },
        "blob" => json!("YQ=="),
        "integer" | "long" => json!(1),
        "boolean" => json!(true),
        other => panic!("no sample for type {other}"),
    }
}

/// The value at `steps`, if the body has it.
pub fn get<'a>(body: &'a Value, steps: &[(Step, Value)]) -> Option<&'a Value> {
    let mut cur = body;
    for (step, _) in steps {
        cur = match step {
            Step::Field(n) => cur.as_object()?.get(n)?,
            Step::Elem => cur.as_array()?.first()?,
            Step::MapValue => cur.as_object()?.values().next()?,
            Step::MapKey => return cur.as_object()?.keys().next().map(|_| cur),
        };
    }
    Some(cur)
}

/// Applies `m` at the member's place, making the member's parents (valid samples) where the
/// body has none, so that the one change is the only thing wrong.
pub fn apply(limits: &Map<String, Value>, body: &mut Value, steps: &[(Step, Value)], m: &Mutation) {
    let ((last, _), parents) = steps.split_last().unwrap();
    let mut cur = body;
    for (step, f) in parents {
        cur = match step {
            Step::Field(n) => cur
                .as_object_mut()
                .unwrap()
                .entry(n.clone())
                .or_insert_with(|| sample(limits, f)),
            Step::Elem => {
                let a = cur.as_array_mut().unwrap();
                if a.is_empty() {
                    a.push(sample(limits, f));
                }
                &mut a[0]
            }
            Step::MapValue => cur.as_object_mut().unwrap().values_mut().next().unwrap(),
            Step::MapKey => unreachable!("a map key has no parts"),
        };
    }
    match (last, m) {
        (Step::Field(n), Mutation::Set(v)) => {
            cur.as_object_mut().unwrap().insert(n.clone(), v.clone());
        }
        (Step::Field(n), Mutation::Remove) => {
            cur.as_object_mut().unwrap().remove(n);
        }
        (Step::Elem, Mutation::Set(v)) => cur.as_array_mut().unwrap()[0] = v.clone(),
        (Step::MapValue, Mutation::Set(v)) => {
            *cur.as_object_mut().unwrap().values_mut().next().unwrap() = v.clone()
        }
        (Step::MapKey, Mutation::RenameKey(k)) => {
            let o = cur.as_object_mut().unwrap();
            let first = o.keys().next().unwrap().clone();
            let v = o.remove(&first).unwrap();
            o.insert(k.clone(), v);
        }
        (s, m) => panic!("cannot apply {m:?} at {s:?}"),
    }
}

/// Values of the right length that break each of the model's patterns. A pattern the table
/// does not know fails the test: add a value for it.
///
/// The model's patterns are unanchored (Smithy's `pattern` trait searches), so `[ -~]*` taken
/// literally matches every string; its intent, and SES's documented rule for header values,
/// is printable ASCII only, which a CR LF (header injection) breaks.
pub fn pattern_violations(pattern: &str) -> &'static [&'static str] {
    match pattern {
        // Selector: letters, digits and inner hyphens.
        "^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\\-]*[a-zA-Z0-9]))$" => &["-s1", "s_1", "s1."],
        // PrivateKey: base64 without whitespace, at most two `=`.
        "^[a-zA-Z0-9+\\/]+={0,2}$" => &["AAAA AAAA", "AAAA===", "AAAA\nAAAA"],
        // MessageHeaderName: printable ASCII without `:` or space.
        "^[!-9;-@A-~]+$" => &["X-Matrix:1", "X Matrix"],
        // MessageHeaderValue: printable ASCII.
        "[ -~]*" => &["one\r\nBcc: injected@example.net"],
        other => panic!("no violating value known for the model pattern {other:?}"),
    }
}

/// The mutations that break `member`'s facts, one constraint each, with a short description.
/// `current` is the member's value in the base, if it has one.
pub fn member_mutations(
    limits: &Map<String, Value>,
    member: &Member,
    current: Option<&Value>,
) -> Vec<(Kind, String, Mutation)> {
    let f = member.facts();
    let last = &member.steps.last().unwrap().0;
    let mut out: Vec<(Kind, String, Mutation)> = Vec::new();
    let set = |v: Value| Mutation::Set(v);
    let wrong_types = |out: &mut Vec<(Kind, String, Mutation)>, values: Vec<Value>| {
        for v in values {
            out.push((Kind::WrongType, v.to_string(), Mutation::Set(v)));
        }
    };
    if *last == Step::MapKey {
        // JSON map keys are strings: only their enum can be broken.
        if let Some(e) = f["enum"].as_array() {
            out.push((
                Kind::NotInEnum,
                "NOT_IN_THE_ENUM".into(),
                Mutation::RenameKey("NOT_IN_THE_ENUM".into()),
            ));
            let lower = e[0].as_str().unwrap().to_ascii_lowercase();
            out.push((Kind::NotInEnum, lower.clone(), Mutation::RenameKey(lower)));
        }
        return out;
    }
    let min = f["min"].as_u64().map(|n| n as usize);
    let max = f["max"].as_u64().map(|n| n as usize);
    match f["type"].as_str().unwrap() {
        "string" => {
            if let Some(max) = max {
                out.push((
                    Kind::TooLong,
                    format!("{} characters", max + 1),
                    set(Value::String("a".repeat(max + 1))),
                ));
            }
            if let Some(min) = min.filter(|&m| m >= 1) {
                out.push((
                    Kind::TooShort,
                    format!("{} characters", min - 1),
                    set(Value::String("a".repeat(min - 1))),
                ));
            }
            if let Some(p) = f["pattern"].as_str() {
                for v in pattern_violations(p) {
                    out.push((Kind::Pattern, format!("{v:?}"), set(json!(v))));
                }
            }
            if let Some(e) = f["enum"].as_array() {
                out.push((
                    Kind::NotInEnum,
                    "NOT_IN_THE_ENUM".into(),
                    set(json!("NOT_IN_THE_ENUM")),
                ));
                let lower = e[0].as_str().unwrap().to_ascii_lowercase();
                out.push((Kind::NotInEnum, lower.clone(), set(json!(lower))));
            }
            wrong_types(&mut out, vec![json!(7), json!(true), json!({}), json!([])]);
        }
        "blob" => {
            out.push((
                Kind::NotBase64,
                "\"not base64!\"".into(),
                set(json!("not base64!")),
            ));
            wrong_types(&mut out, vec![json!(7), json!(true), json!({}), json!([])]);
        }
        "integer" | "long" => {
            wrong_types(
                &mut out,
                vec![json!("10"), json!(1.5), json!(true), json!({}), json!([])],
            );
        }
        "boolean" => {
            wrong_types(
                &mut out,
                vec![json!("true"), json!(1), json!({}), json!([])],
            );
        }
        "structure" => {
            wrong_types(&mut out, vec![json!("x"), json!(7), json!(true), json!([])]);
        }
        "map" => {
            wrong_types(&mut out, vec![json!("x"), json!(7), json!(true), json!([])]);
        }
        "list" => {
            let shape = f["shape"].as_str().unwrap();
            let elem = current
                .and_then(|c| c.as_array())
                .and_then(|a| a.first().cloned())
                .unwrap_or_else(|| sample(limits, &limits[&format!("{shape}.member")]));
            if let Some(max) = max {
                out.push((
                    Kind::TooLong,
                    format!("{} elements", max + 1),
                    set(Value::Array(vec![elem.clone(); max + 1])),
                ));
            }
            if let Some(min) = min.filter(|&m| m >= 1) {
                out.push((
                    Kind::TooShort,
                    format!("{} elements", min - 1),
                    set(Value::Array(vec![elem; min - 1])),
                ));
            }
            wrong_types(&mut out, vec![json!("x"), json!(7), json!(true), json!({})]);
        }
        other => panic!("{}: no cases for type {other}", member.name),
    }
    match last {
        // Lists and maps are not sparse in the model: a null element is not a value.
        Step::Elem | Step::MapValue => {
            out.push((Kind::NullElement, "null".into(), set(Value::Null)));
        }
        Step::Field(_) if f["required"] == true => {
            out.push((Kind::Missing, "absent".into(), Mutation::Remove));
            out.push((Kind::Null, "null".into(), set(Value::Null)));
        }
        // An optional member sent as null is the member left out (restJson1), which is valid.
        _ => {}
    }
    out
}

/// The whole-body faults of a valid body `b` (a JSON object).
pub fn body_faults(b: &[u8]) -> Vec<(Kind, String, Vec<u8>)> {
    assert!(b.starts_with(b"{\"") && b.ends_with(b"}"), "a JSON object");
    let mut out = Vec::new();
    out.push((
        Kind::InvalidJson,
        "truncated".into(),
        b[..b.len() - 1].to_vec(),
    ));
    let colon = b.iter().position(|&c| c == b':').unwrap();
    let mut no_colon = b.to_vec();
    no_colon[colon] = b' ';
    out.push((Kind::InvalidJson, "a colon missing".into(), no_colon));
    let mut bad_key = b.to_vec();
    bad_key.splice(2..2, [0xff, 0xfe]);
    out.push((Kind::InvalidUtf8, "in a member name".into(), bad_key));
    if let Some(i) = b.windows(2).position(|w| w == b":\"") {
        let mut bad_value = b.to_vec();
        bad_value.splice(i + 2..i + 2, [0xc3, 0x28]);
        out.push((Kind::InvalidUtf8, "in a string value".into(), bad_value));
    }
    let mut array = b"[".to_vec();
    array.extend_from_slice(b);
    array.push(b']');
    out.push((Kind::JsonArray, "[body]".into(), array));
    let deep = 10_000;
    let mut nest = "[".repeat(deep).into_bytes();
    nest.extend_from_slice("]".repeat(deep).as_bytes());
    out.push((Kind::DeepNesting, "10000 nested arrays".into(), nest));
    let mut member = b"{\"Deep\":".to_vec();
    member.extend_from_slice("{\"a\":".repeat(deep).as_bytes());
    member.push(b'1');
    member.extend_from_slice("}".repeat(deep).as_bytes());
    member.push(b',');
    member.extend_from_slice(&b[1..]);
    out.push((
        Kind::DeepNesting,
        "10000 nested objects in a member".into(),
        member,
    ));
    let v: Value = serde_json::from_slice(b).unwrap();
    let (k, first) = v.as_object().unwrap().iter().next().unwrap();
    let mut dup = format!("{{{}:{},", json!(k), first).into_bytes();
    dup.extend_from_slice(&b[1..]);
    out.push((Kind::DuplicateMember, format!("{k} twice"), dup));
    let mut trailing = b.to_vec();
    trailing.extend_from_slice(b" {}");
    out.push((Kind::TrailingData, "a second value".into(), trailing));
    out
}
