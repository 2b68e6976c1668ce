//! Fabric's signature-policy language (`AND('Org1MSP.member', OR(...))`), as
//! `peer lifecycle chaincode approveformyorg --signature-policy` and collection configurations
//! take it, parsed into the [`SignaturePolicyEnvelope`] Fabric's `policydsl.FromString` builds,
//! byte for byte, so that approvals made with either tool match.
//!
//! The language: a gate `AND(p, …)`, `OR(p, …)` or `OutOf(n, p, …)` (each name spelled as
//! written here, all lower case or all upper case, as Fabric accepts them), where each `p` is a
//! nested gate or a principal `'MSPID.role'` (single or double quotes; role `member`, `admin`,
//! `client`, `peer` or `orderer`; the MSP ID is letters, digits, `.` and `-`). `n` is a number,
//! or a quoted one; `0 <= n <= count + 1` (Fabric allows `count + 1`, a policy nobody satisfies).
//!
//! The envelope is Fabric's: version 0; `AND` is `NOutOf(count)`, `OR` is `NOutOf(1)`. Like
//! Fabric, identities are **not** deduplicated, and are numbered in the order Fabric's evaluator
//! meets them: the nested gates of a gate first (left to right, each completely), then the
//! gate's own principals, left to right. So `OR('A.member', AND('B.member', 'C.member'))` has
//! identities `[B, C, A]` and rule `OR(signed_by 2, AND(signed_by 0, signed_by 1))`.
//!
//! ```
//! use peer_support::policy;
//!
//! let envelope = policy::parse("OR('Org1MSP.member', 'Org2MSP.peer')").unwrap();
//! assert_eq!(envelope.identities.len(), 2);
//! assert_eq!(policy::to_dsl(&envelope), "OR('Org1MSP.member', 'Org2MSP.peer')");
//! let err = policy::parse("OR('Org1MSP.member', 'Org2MSP.nobody')").unwrap_err();
//! assert!(err.to_string().contains("unrecognized token 'Org2MSP.nobody'"), "{err}");
//! ```

use prost::Message;
use proto::common::msp_principal::Classification;
use proto::common::msp_role::MspRoleType;
use proto::common::signature_policy::{NOutOf, Type as Rule};
use proto::common::{MspPrincipal, MspRole, SignaturePolicy, SignaturePolicyEnvelope};
use proto::protos::{ApplicationPolicy, application_policy};

/// The endorsement policy a definition gets when it names none (Fabric's
/// `DefaultEndorsementPolicyRef`, filled in by the peer's `_lifecycle`).
pub const DEFAULT_ENDORSEMENT_POLICY_REF: &str = "/Channel/Application/Endorsement";

/// Most gates nested in one another. Fabric has no such bound, but a policy nested deeper than
/// this would not decode again here (protobuf decoders bound message nesting), and real
/// policies nest a few levels.
pub const MAX_DEPTH: usize = 32;

/// Most gates and principals in one policy (Fabric's parser refuses expressions beyond 10000
/// nodes).
pub const MAX_NODES: usize = 10_000;

/// Why a policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The text is not a policy of Fabric's language.
    #[error("{message} (at offset {offset} of the policy)")]
    Syntax {
        /// What is wrong, in Fabric's words where Fabric has them.
        message: String,
        /// Where: the byte offset in the policy text.
        offset: usize,
    },
    /// The policy is larger or deeper than this parser takes.
    #[error("policy exceeds maximum allowed {what} ({limit})")]
    TooComplex {
        /// What is over the limit: nesting depth or nodes.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// A signature policy and a channel configuration policy were both given (Fabric's CLI
    /// refuses that).
    #[error("cannot specify both \"--signature-policy\" and \"--channel-config-policy\"")]
    BothPolicies,
    /// The signature policy given does not parse.
    #[error("invalid signature policy: {policy}")]
    InvalidSignaturePolicy {
        /// The policy text.
        policy: String,
        /// Why.
        #[source]
        source: Box<PolicyError>,
    },
}

fn syntax(message: impl Into<String>, offset: usize) -> PolicyError {
    PolicyError::Syntax {
        message: message.into(),
        offset,
    }
}

/// Parses `dsl` into the envelope Fabric's `policydsl.FromString` builds for it.
pub fn parse(dsl: &str) -> Result<SignaturePolicyEnvelope, PolicyError> {
    let mut parser = Parser {
        text: dsl,
        pos: 0,
        nodes: 0,
    };
    parser.skip_space();
    if parser.pos == dsl.len() {
        return Err(syntax(
            "Unexpected end of expression: a policy is AND(...), OR(...) or OutOf(n, ...)",
            parser.pos,
        ));
    }
    let root = match parser.argument(0)? {
        Arg::Gate(gate) => gate,
        other => {
            return Err(syntax(
                format!(
                    "invalid policy string '{dsl}': a policy is a gate (AND, OR or OutOf), not {}",
                    other.describe()
                ),
                0,
            ));
        }
    };
    parser.skip_space();
    if parser.pos < dsl.len() {
        return Err(syntax(
            format!(
                "unexpected '{}' after the end of the policy",
                parser.rest_token()
            ),
            parser.pos,
        ));
    }
    let mut identities = Vec::new();
    let rule = root.build(&mut identities)?;
    Ok(SignaturePolicyEnvelope {
        version: 0,
        rule: Some(rule),
        identities,
    })
}

/// Renders `envelope` in the policy language: `AND` for an `NOutOf` of all its rules (two or
/// more), `OR` for one of them, `OutOf(n, …)` otherwise. For an envelope [`parse`] made,
/// parsing the text gives the same envelope again. Principals the language cannot name (not an
/// MSP role, an index out of range) come out as `<…>` descriptions, which do not parse.
pub fn to_dsl(envelope: &SignaturePolicyEnvelope) -> String {
    let mut out = String::new();
    match &envelope.rule {
        Some(rule) => render(rule, &envelope.identities, &mut out),
        None => out.push_str("<no rule>"),
    }
    out
}

/// The `ApplicationPolicy` of a chaincode definition from the CLI's two flags: a signature
/// policy, or a channel configuration policy reference, never both; neither gives Fabric's
/// default, [`DEFAULT_ENDORSEMENT_POLICY_REF`] (Fabric's CLI sends nothing and the peer fills
/// that in). Empty strings count as not given, as in Fabric.
pub fn application_policy(
    signature_policy: Option<&str>,
    channel_config_policy: Option<&str>,
) -> Result<ApplicationPolicy, PolicyError> {
    let signature_policy = signature_policy.filter(|s| !s.is_empty());
    let channel_config_policy = channel_config_policy.filter(|s| !s.is_empty());
    let r#type = match (signature_policy, channel_config_policy) {
        (Some(_), Some(_)) => return Err(PolicyError::BothPolicies),
        (Some(dsl), None) => {
            application_policy::Type::SignaturePolicy(parse(dsl).map_err(|e| {
                PolicyError::InvalidSignaturePolicy {
                    policy: dsl.to_owned(),
                    source: Box::new(e),
                }
            })?)
        }
        (None, Some(reference)) => {
            application_policy::Type::ChannelConfigPolicyReference(reference.to_owned())
        }
        (None, None) => application_policy::Type::ChannelConfigPolicyReference(
            DEFAULT_ENDORSEMENT_POLICY_REF.to_owned(),
        ),
    };
    Ok(ApplicationPolicy {
        r#type: Some(r#type),
    })
}

/// A gate as written.
struct Gate {
    threshold: i64,
    args: Vec<Arg>,
    /// Where the gate's name starts.
    offset: usize,
}

/// One argument of a gate.
enum Arg {
    Gate(Gate),
    Principal(MspRole),
    Number(f64),
    Text(String),
    Bool(bool),
}

impl Arg {
    fn describe(&self) -> String {
        match self {
            Arg::Gate(_) => "a gate".into(),
            Arg::Principal(role) => format!("the principal '{}'", principal_text(role)),
            Arg::Number(n) => format!("the number {n}"),
            Arg::Text(t) => format!("the string '{t}'"),
            Arg::Bool(b) => format!("{b}"),
        }
    }
}

impl Gate {
    /// Numbers the identities as Fabric's evaluator does: nested gates first, left to right,
    /// then this gate's own principals.
    fn build(self, identities: &mut Vec<MspPrincipal>) -> Result<SignaturePolicy, PolicyError> {
        let count = self.args.len();
        if self.threshold < 0 || self.threshold > count as i64 + 1 {
            return Err(syntax(
                format!(
                    "invalid t-out-of-n predicate, t {}, n {count}",
                    self.threshold
                ),
                self.offset,
            ));
        }
        let mut rules: Vec<Option<SignaturePolicy>> = Vec::with_capacity(count);
        let mut principals = Vec::new();
        for (i, arg) in self.args.into_iter().enumerate() {
            match arg {
                Arg::Gate(gate) => rules.push(Some(gate.build(identities)?)),
                Arg::Principal(role) => {
                    rules.push(None);
                    principals.push((i, role));
                }
                // The parser refuses the others where they stand.
                other => {
                    return Err(syntax(
                        format!("expected a principal or a gate, found {}", other.describe()),
                        self.offset,
                    ));
                }
            }
        }
        for (i, role) in principals {
            let index = identities.len() as i32;
            identities.push(MspPrincipal {
                principal_classification: Classification::Role as i32,
                principal: role.encode_to_vec().into(),
            });
            rules[i] = Some(SignaturePolicy {
                r#type: Some(Rule::SignedBy(index)),
            });
        }
        Ok(SignaturePolicy {
            r#type: Some(Rule::NOutOf(NOutOf {
                n: self.threshold as i32,
                rules: rules.into_iter().flatten().collect(),
            })),
        })
    }
}

#[derive(Clone, Copy)]
enum GateKind {
    And,
    Or,
    OutOf,
}

/// Fabric registers each gate under three spellings, and only those.
fn gate_kind(name: &str) -> Option<GateKind> {
    match name {
        "And" | "and" | "AND" => Some(GateKind::And),
        "Or" | "or" | "OR" => Some(GateKind::Or),
        "OutOf" | "outof" | "OUTOF" => Some(GateKind::OutOf),
        _ => None,
    }
}

fn role_of(name: &str) -> Option<MspRoleType> {
    match name {
        "member" => Some(MspRoleType::Member),
        "admin" => Some(MspRoleType::Admin),
        "client" => Some(MspRoleType::Client),
        "peer" => Some(MspRoleType::Peer),
        "orderer" => Some(MspRoleType::Orderer),
        _ => None,
    }
}

/// `MSPID.role` as Fabric's pattern `^([[:alnum:].-]+)([.])(admin|member|…)$` takes it.
fn principal(text: &str) -> Option<MspRole> {
    let (msp, role) = text.rsplit_once('.')?;
    let role = role_of(role)?;
    let msp_ok = !msp.is_empty()
        && msp
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    msp_ok.then(|| MspRole {
        msp_identifier: msp.to_owned(),
        role: role as i32,
    })
}

/// A number as the evaluator reads one: digits, an optional fraction, an optional leading
/// minus; a threshold is its integer part.
fn number(text: &str) -> Option<f64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, "0"));
    let ok = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && !frac.is_empty()
        && frac.bytes().all(|b| b.is_ascii_digit());
    if ok { text.parse().ok() } else { None }
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    nodes: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    /// The text of the token at the cursor, for messages.
    fn rest_token(&self) -> &str {
        let rest = &self.text[self.pos..];
        let end = rest
            .char_indices()
            .find(|(i, c)| *i > 0 && !(c.is_alphanumeric() || *c == '_' || *c == '.'))
            .map_or(rest.len(), |(i, _)| i);
        &rest[..end]
    }

    fn count_node(&mut self) -> Result<(), PolicyError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(PolicyError::TooComplex {
                what: "nodes",
                limit: MAX_NODES,
            });
        }
        Ok(())
    }

    /// One argument at the cursor (after optional space): a gate, a string, a number, a
    /// boolean; a bare word is refused.
    fn argument(&mut self, depth: usize) -> Result<Arg, PolicyError> {
        self.skip_space();
        let start = self.pos;
        let Some(first) = self.peek() else {
            return Err(syntax("Unexpected end of expression", start));
        };
        match first {
            b'\'' | b'"' => {
                self.count_node()?;
                let text = self.quoted()?;
                Ok(match principal(&text) {
                    Some(role) => Arg::Principal(role),
                    None => Arg::Text(text),
                })
            }
            b'0'..=b'9' | b'-' => {
                let end = self.text[start + 1..]
                    .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                    .map_or(self.text.len(), |i| start + 1 + i);
                let word = &self.text[start..end];
                let value = number(word)
                    .ok_or_else(|| syntax(format!("invalid number '{word}'"), start))?;
                self.pos = end;
                Ok(Arg::Number(value))
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let end = self.text[start..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                    .map_or(self.text.len(), |i| start + i);
                let word = &self.text[start..end];
                self.pos = end;
                self.skip_space();
                if self.peek() == Some(b'(') {
                    self.pos += 1;
                    let kind = gate_kind(word).ok_or_else(|| {
                        syntax(
                            format!(
                                "unknown function '{word}': the gates are AND, OR and OutOf \
                                 (spelled so, or all lower or all upper case)"
                            ),
                            start,
                        )
                    })?;
                    return Ok(Arg::Gate(self.gate(kind, start, depth + 1)?));
                }
                match word {
                    "true" => Ok(Arg::Bool(true)),
                    "false" => Ok(Arg::Bool(false)),
                    _ => Err(syntax(
                        format!(
                            "unrecognized token '{word}' in policy string: principals are \
                             quoted, as in 'Org1MSP.member'"
                        ),
                        start,
                    )),
                }
            }
            _ => Err(syntax(
                format!(
                    "unexpected '{}'",
                    self.text[start..].chars().next().unwrap_or('?')
                ),
                start,
            )),
        }
    }

    /// A quoted string at the cursor. As in Fabric's evaluator, either quote ends it and a
    /// backslash takes the next character as it is.
    fn quoted(&mut self) -> Result<String, PolicyError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        let mut chars = self.text[self.pos..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\'' | '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, escaped)) => out.push(escaped),
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err(syntax("unclosed quote", start))
    }

    /// The arguments of a gate whose `(` was just read, and its threshold.
    fn gate(&mut self, kind: GateKind, offset: usize, depth: usize) -> Result<Gate, PolicyError> {
        if depth > MAX_DEPTH {
            return Err(PolicyError::TooComplex {
                what: "nesting depth",
                limit: MAX_DEPTH,
            });
        }
        self.count_node()?;
        let mut args = Vec::new();
        let mut arg_offsets = Vec::new();
        self.skip_space();
        if self.peek() == Some(b')') {
            self.pos += 1;
        } else {
            loop {
                self.skip_space();
                arg_offsets.push(self.pos);
                args.push(self.argument(depth)?);
                self.skip_space();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b')') => {
                        self.pos += 1;
                        break;
                    }
                    Some(_) => {
                        return Err(syntax(
                            format!(
                                "expected ',' or ')' in the arguments of the gate at offset \
                                 {offset}, found '{}'",
                                self.rest_token()
                            ),
                            self.pos,
                        ));
                    }
                    None => {
                        return Err(syntax(
                            format!(
                                "Unexpected end of expression: the gate at offset {offset} is \
                                 not closed"
                            ),
                            self.pos,
                        ));
                    }
                }
            }
        }
        let (threshold, principals_from) = match kind {
            GateKind::And => (args.len() as i64, 0),
            GateKind::Or => (1, 0),
            GateKind::OutOf => {
                let given = args.len();
                if given < 2 {
                    return Err(syntax(
                        format!("expected at least two arguments to NOutOf. Given {given}"),
                        offset,
                    ));
                }
                let threshold = match &args[0] {
                    Arg::Number(n) => n.trunc() as i64,
                    Arg::Text(t) => match number(t.trim()) {
                        Some(n) => n.trunc() as i64,
                        None => {
                            return Err(syntax(
                                format!("OutOf's first argument must be a number, found '{t}'"),
                                arg_offsets[0],
                            ));
                        }
                    },
                    other => {
                        return Err(syntax(
                            format!(
                                "OutOf's first argument must be a number, found {}",
                                other.describe()
                            ),
                            arg_offsets[0],
                        ));
                    }
                };
                (threshold, 1)
            }
        };
        if args.len() == principals_from {
            return Err(syntax(
                "expected at least two arguments to NOutOf. Given 1",
                offset,
            ));
        }
        for (arg, at) in args.iter().zip(&arg_offsets).skip(principals_from) {
            match arg {
                Arg::Gate(_) | Arg::Principal(_) => {}
                Arg::Text(t) => {
                    return Err(syntax(
                        format!(
                            "unrecognized token '{t}' in policy string: a principal is \
                             'MSPID.role' with role member, admin, client, peer or orderer"
                        ),
                        *at,
                    ));
                }
                Arg::Number(_) => {
                    return Err(syntax(
                        format!(
                            "unexpected type float64: expected a principal or a gate, found {}",
                            arg.describe()
                        ),
                        *at,
                    ));
                }
                Arg::Bool(_) => {
                    return Err(syntax(
                        format!(
                            "unexpected type bool: expected a principal or a gate, found {}",
                            arg.describe()
                        ),
                        *at,
                    ));
                }
            }
        }
        if principals_from == 1 {
            args.remove(0);
        }
        Ok(Gate {
            threshold,
            args,
            offset,
        })
    }
}

fn principal_text(role: &MspRole) -> String {
    let name = match MspRoleType::try_from(role.role) {
        Ok(MspRoleType::Member) => "member".to_owned(),
        Ok(MspRoleType::Admin) => "admin".to_owned(),
        Ok(MspRoleType::Client) => "client".to_owned(),
        Ok(MspRoleType::Peer) => "peer".to_owned(),
        Ok(MspRoleType::Orderer) => "orderer".to_owned(),
        Err(_) => format!("<role {}>", role.role),
    };
    format!("{}.{name}", role.msp_identifier)
}

fn render(rule: &SignaturePolicy, identities: &[MspPrincipal], out: &mut String) {
    match &rule.r#type {
        Some(Rule::SignedBy(index)) => {
            let identity = usize::try_from(*index).ok().and_then(|i| identities.get(i));
            match identity {
                Some(p) if p.principal_classification == Classification::Role as i32 => {
                    match MspRole::decode(p.principal.clone()) {
                        Ok(role) => {
                            out.push('\'');
                            out.push_str(&principal_text(&role));
                            out.push('\'');
                        }
                        Err(_) => out.push_str("<undecodable MSP role>"),
                    }
                }
                Some(p) => {
                    let kind = Classification::try_from(p.principal_classification).map_or_else(
                        |_| p.principal_classification.to_string(),
                        |c| c.as_str_name().to_owned(),
                    );
                    out.push_str(&format!("<principal of classification {kind}>"));
                }
                None => out.push_str(&format!("<no identity {index}>")),
            }
        }
        Some(Rule::NOutOf(gate)) => {
            let count = gate.rules.len();
            if gate.n == 1 {
                out.push_str("OR(");
            } else if count >= 2 && gate.n as usize == count {
                out.push_str("AND(");
            } else {
                out.push_str(&format!("OutOf({}", gate.n));
                if count > 0 {
                    out.push_str(", ");
                }
            }
            for (i, sub) in gate.rules.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render(sub, identities, out);
            }
            out.push(')');
        }
        None => out.push_str("<empty rule>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(msp: &str, role: MspRoleType) -> MspPrincipal {
        MspPrincipal {
            principal_classification: Classification::Role as i32,
            principal: MspRole {
                msp_identifier: msp.into(),
                role: role as i32,
            }
            .encode_to_vec()
            .into(),
        }
    }

    fn by(index: i32) -> SignaturePolicy {
        SignaturePolicy {
            r#type: Some(Rule::SignedBy(index)),
        }
    }

    fn n_of(n: i32, rules: Vec<SignaturePolicy>) -> SignaturePolicy {
        SignaturePolicy {
            r#type: Some(Rule::NOutOf(NOutOf { n, rules })),
        }
    }

    fn envelope(rule: SignaturePolicy, identities: Vec<MspPrincipal>) -> SignaturePolicyEnvelope {
        SignaturePolicyEnvelope {
            version: 0,
            rule: Some(rule),
            identities,
        }
    }

    fn error(dsl: &str) -> PolicyError {
        parse(dsl).expect_err(dsl)
    }

    fn syntax_at(dsl: &str) -> (String, usize) {
        match error(dsl) {
            PolicyError::Syntax { message, offset } => (message, offset),
            other => panic!("{dsl}: not a syntax error: {other}"),
        }
    }

    #[test]
    fn nested_gates_number_identities_as_fabric_does() {
        use MspRoleType::{Admin, Member};
        // The inner OR is evaluated first (B.admin 0, A.member 1), then the AND's own
        // principal (A.member again, 2): Fabric neither reorders nor deduplicates.
        assert_eq!(
            parse("AND('A.member', OR('B.admin','A.member'))").unwrap(),
            envelope(
                n_of(2, vec![by(2), n_of(1, vec![by(0), by(1)])]),
                vec![role("B", Admin), role("A", Member), role("A", Member)],
            )
        );
        // Fabric's TestComplex1 and TestComplex2.
        assert_eq!(
            parse("OR('A.member', AND('B.member', 'C.member'))").unwrap(),
            envelope(
                n_of(1, vec![by(2), n_of(2, vec![by(0), by(1)])]),
                vec![role("B", Member), role("C", Member), role("A", Member)],
            )
        );
        assert_eq!(
            parse("OR(AND('A.member', 'B.member'), OR('C.admin', 'D.member'))").unwrap(),
            envelope(
                n_of(
                    1,
                    vec![n_of(2, vec![by(0), by(1)]), n_of(1, vec![by(2), by(3)])]
                ),
                vec![
                    role("A", Member),
                    role("B", Member),
                    role("C", Admin),
                    role("D", Member)
                ],
            )
        );
    }

    #[test]
    fn gates_roles_quotes_and_spellings() {
        use MspRoleType::{Admin, Client, Member, Orderer, Peer};
        let two = vec![role("A", Member), role("B", Member)];
        for dsl in [
            "OutOf(1, 'A.member', 'B.member')",
            "outof('1', 'A.member', 'B.member')",
            "OUTOF(1.9, \"A.member\", \"B.member\")",
            "or('A.member','B.member')",
            " Or (\n\t'A.member' ,\n 'B.member' ) ",
        ] {
            assert_eq!(
                parse(dsl).unwrap(),
                envelope(n_of(1, vec![by(0), by(1)]), two.clone()),
                "{dsl}"
            );
        }
        assert_eq!(
            parse("And('A.member', 'B.member')").unwrap(),
            envelope(n_of(2, vec![by(0), by(1)]), two.clone())
        );
        assert_eq!(
            parse("OR('A.peer', 'B.admin', 'C.orderer', 'D.client')").unwrap(),
            envelope(
                n_of(1, vec![by(0), by(1), by(2), by(3)]),
                vec![
                    role("A", Peer),
                    role("B", Admin),
                    role("C", Orderer),
                    role("D", Client)
                ],
            )
        );
        let dotted = parse("OR('MSP.WITH.DOTS.member', 'MSP-WITH-DASHES.admin')").unwrap();
        assert_eq!(
            dotted.identities,
            vec![
                role("MSP.WITH.DOTS", Member),
                role("MSP-WITH-DASHES", Admin)
            ]
        );
        // t may be 0 (always satisfied) up to n + 1 (never satisfied), as in Fabric.
        for t in [0, 3] {
            let env = parse(&format!("OutOf({t}, 'A.member', 'B.member')")).unwrap();
            assert_eq!(env, envelope(n_of(t, vec![by(0), by(1)]), two.clone()));
        }
        // A single-principal AND is NOutOf(1).
        assert_eq!(
            parse("AND('A.member')").unwrap(),
            envelope(n_of(1, vec![by(0)]), vec![role("A", Member)])
        );
    }

    #[test]
    fn errors_say_what_and_where() {
        let (m, at) = syntax_at("OR('A.member', Bmember)");
        assert!(
            m.starts_with("unrecognized token 'Bmember' in policy string"),
            "{m}"
        );
        assert_eq!(at, 15);
        let (m, at) = syntax_at("OR('A.member', 'Bmember')");
        assert!(
            m.starts_with("unrecognized token 'Bmember' in policy string"),
            "{m}"
        );
        assert_eq!(at, 15);
        let (m, _) = syntax_at("OR('A.member', 'B.Member')");
        assert!(
            m.contains("'B.Member'") && m.contains("member, admin"),
            "{m}"
        );
        assert!(syntax_at("").0.contains("Unexpected end of expression"));
        assert!(syntax_at("   ").0.contains("Unexpected end of expression"));
        assert_eq!(
            syntax_at("OutOf(1)"),
            (
                "expected at least two arguments to NOutOf. Given 1".into(),
                0
            )
        );
        assert_eq!(
            syntax_at("AND()").0,
            "expected at least two arguments to NOutOf. Given 1"
        );
        assert_eq!(
            syntax_at("OutOf(-1, 'A.member', 'B.member')"),
            ("invalid t-out-of-n predicate, t -1, n 2".into(), 0)
        );
        assert_eq!(
            syntax_at("OR('A.member', OutOf(4, 'A.member', 'B.member'))"),
            ("invalid t-out-of-n predicate, t 4, n 2".into(), 15)
        );
        let (m, at) = syntax_at("OutOf(true, 'A.member')");
        assert!(m.contains("first argument must be a number"), "{m}");
        assert_eq!(at, 6);
        assert!(
            syntax_at("OutOf('A.member', 'B.member')")
                .0
                .contains("must be a number")
        );
        assert!(
            syntax_at("OutOf(1, 2)")
                .0
                .starts_with("unexpected type float64")
        );
        assert!(
            syntax_at("OR('A.member', false)")
                .0
                .starts_with("unexpected type bool")
        );
        let (m, at) = syntax_at("aNd('A.member')");
        assert!(m.contains("unknown function 'aNd'"), "{m}");
        assert_eq!(at, 0);
        let (m, at) = syntax_at("AND('A.member' 'B.member')");
        assert!(m.contains("expected ',' or ')'"), "{m}");
        assert_eq!(at, 15);
        let (m, at) = syntax_at("AND('A.member',)");
        assert_eq!((m.as_str(), at), ("unexpected ')'", 15));
        assert!(syntax_at("AND('A.member'").0.contains("is not closed"));
        assert_eq!(syntax_at("AND('A.member)"), ("unclosed quote".into(), 4));
        let (m, at) = syntax_at("AND('A.member') OR");
        assert!(m.contains("unexpected 'OR' after the end"), "{m}");
        assert_eq!(at, 16);
        assert!(syntax_at("'A.member'").0.contains("a policy is a gate"));
        // The rendered error names the place.
        assert_eq!(
            error("OutOf(1)").to_string(),
            "expected at least two arguments to NOutOf. Given 1 (at offset 0 of the policy)"
        );
    }

    #[test]
    fn hostile_input_is_refused_without_overflowing() {
        let deep = |depth: usize| {
            format!(
                "{}'A.member'{}",
                "AND('A.member', ".repeat(depth),
                ")".repeat(depth)
            )
        };
        let ok = parse(&deep(MAX_DEPTH)).unwrap();
        assert_eq!(ok.identities.len(), MAX_DEPTH + 1);
        assert_eq!(
            error(&deep(MAX_DEPTH + 1)),
            PolicyError::TooComplex {
                what: "nesting depth",
                limit: MAX_DEPTH
            }
        );
        assert!(matches!(
            error(&"AND(".repeat(100_000)),
            PolicyError::TooComplex { .. }
        ));
        // Wide is fine up to the node limit (Fabric's test: 2000 principals in one OutOf).
        let wide = |count: usize| format!("OutOf(1{})", ", 'A.member'".repeat(count));
        assert_eq!(parse(&wide(2000)).unwrap().identities.len(), 2000);
        assert_eq!(
            error(&wide(MAX_NODES)),
            PolicyError::TooComplex {
                what: "nodes",
                limit: MAX_NODES
            }
        );
        for bad in [
            "AND(",
            "NOPE('A.member')",
            "AND('A.member', 'B.member'))))))",
            &"(".repeat(100_000),
            &format!("'{}.member'", "A".repeat(1_000_000)),
            "OR('A.member', 'é.member')",
            "OR('A.member\\",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rendering_round_trips() {
        for dsl in [
            "OR('A.member', 'B.member')",
            "AND('A.member', OR('B.admin', 'A.member'))",
            "OutOf(2, 'A.member', 'B.peer', AND('C.client', 'D.orderer'))",
            "OR(AND('A.member', 'B.member'), OR('C.admin', 'D.member'))",
            "OutOf(0, 'A.member', 'B.member')",
            "OutOf(3, 'A.member', 'B.member')",
        ] {
            let envelope = parse(dsl).unwrap();
            assert_eq!(to_dsl(&envelope), dsl);
            assert_eq!(parse(&to_dsl(&envelope)).unwrap(), envelope, "{dsl}");
        }
        // Other spellings come back in one form.
        let envelope = parse("and('A.member', \"B.member\")").unwrap();
        assert_eq!(to_dsl(&envelope), "AND('A.member', 'B.member')");
        // What the language cannot name is described, not invented.
        let odd = SignaturePolicyEnvelope {
            version: 0,
            rule: Some(n_of(1, vec![by(0), by(5)])),
            identities: vec![MspPrincipal {
                principal_classification: Classification::Identity as i32,
                principal: Default::default(),
            }],
        };
        assert_eq!(
            to_dsl(&odd),
            "OR(<principal of classification IDENTITY>, <no identity 5>)"
        );
    }

    #[test]
    fn application_policy_from_the_cli_flags() {
        let reference = |r: &str| ApplicationPolicy {
            r#type: Some(application_policy::Type::ChannelConfigPolicyReference(
                r.into(),
            )),
        };
        assert_eq!(
            application_policy(None, None).unwrap(),
            reference("/Channel/Application/Endorsement")
        );
        assert_eq!(
            application_policy(Some(""), Some("")).unwrap(),
            reference(DEFAULT_ENDORSEMENT_POLICY_REF)
        );
        assert_eq!(
            application_policy(None, Some("/Channel/Application/Admins")).unwrap(),
            reference("/Channel/Application/Admins")
        );
        assert_eq!(
            application_policy(Some("OR('A.member')"), None).unwrap(),
            ApplicationPolicy {
                r#type: Some(application_policy::Type::SignaturePolicy(
                    parse("OR('A.member')").unwrap()
                )),
            }
        );
        let both = application_policy(Some("OR('A.member')"), Some("/Channel/X")).unwrap_err();
        assert_eq!(
            both.to_string(),
            "cannot specify both \"--signature-policy\" and \"--channel-config-policy\""
        );
        let bad = application_policy(Some("OR(A.member)"), None).unwrap_err();
        assert_eq!(bad.to_string(), "invalid signature policy: OR(A.member)");
        assert!(
            proto::error_chain(&bad).contains("unrecognized token 'A.member'"),
            "{}",
            proto::error_chain(&bad)
        );
    }
}
