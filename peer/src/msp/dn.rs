//! Distinguished names written as Go's `pkix.Name.String()` writes them, which is what Fabric's
//! client identity (`cid`) library puts in an identity's id.
//!
//! Go first gathers the known attributes into named fields (the last `CN` and `SERIALNUMBER`
//! win; `C`, `ST`, `L`, `STREET`, `POSTALCODE`, `O`, `OU` keep every value), then prints, last
//! first: `SERIALNUMBER`, `CN`, `OU`, `O`, `POSTALCODE`, `STREET`, `L`, `ST`, `C` (several
//! values of one attribute joined by `+`), then the other attributes (for example an e-mail
//! address) in reverse order as `<oid>=#<hex of the value re-encoded in DER>`. Values escape
//! `, + " \ < > ;`, a leading `#` and leading or trailing spaces with a backslash. For example
//! `CN=Admin@org1.example.com,OU=admin,L=San Francisco,ST=California,C=US`.

use x509_parser::asn1_rs::{PrintableString, Tag, ToDer, Utf8String};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// The standard attributes, in the order Go builds its RDN sequence (printed reversed).
const KNOWN: [(&str, &str); 9] = [
    ("2.5.4.6", "C"),
    ("2.5.4.8", "ST"),
    ("2.5.4.7", "L"),
    ("2.5.4.9", "STREET"),
    ("2.5.4.17", "POSTALCODE"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.3", "CN"),
    ("2.5.4.5", "SERIALNUMBER"),
];

/// `name` as Go's `pkix.Name.String()` prints it.
pub fn go_string(name: &X509Name<'_>) -> String {
    // Values per known attribute, and the other attributes, in certificate order.
    let mut known: Vec<Vec<String>> = vec![Vec::new(); KNOWN.len()];
    let mut others: Vec<String> = Vec::new();
    for attr in name.iter_attributes() {
        let oid = attr.attr_type().to_id_string();
        let value = string_value(attr);
        match KNOWN.iter().position(|(o, _)| *o == oid) {
            Some(i) => {
                let Some(value) = value else { continue };
                // Go keeps only the last common name and serial number.
                if KNOWN[i].1 == "CN" || KNOWN[i].1 == "SERIALNUMBER" {
                    known[i].clear();
                }
                known[i].push(value);
            }
            None => {
                let der = value.map_or_else(|| raw_der(attr), |v| go_marshal(&v));
                others.push(format!("{oid}=#{}", hex::encode(der)));
            }
        }
    }
    let mut rdns: Vec<String> = others;
    for (i, values) in known.iter().enumerate() {
        if !values.is_empty() {
            let short = KNOWN[i].1;
            let rdn: Vec<String> = values
                .iter()
                .map(|v| format!("{short}={}", escape(v)))
                .collect();
            rdns.push(rdn.join("+"));
        }
    }
    rdns.reverse();
    rdns.join(",")
}

/// The attribute's value as Go reads it: the string types Go accepts.
pub(super) fn string_value(attr: &AttributeTypeAndValue<'_>) -> Option<String> {
    let any = attr.attr_value();
    let data = any.data;
    match any.tag() {
        Tag::PrintableString | Tag::Utf8String | Tag::Ia5String | Tag::NumericString => {
            std::str::from_utf8(data).ok().map(str::to_owned)
        }
        // Go takes T.61 bytes as they are.
        Tag::T61String => Some(String::from_utf8_lossy(data).into_owned()),
        Tag::BmpString => {
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// DER of the value as Go's `asn1.Marshal` writes a string: PrintableString when every
/// character allows it, UTF8String otherwise.
fn go_marshal(value: &str) -> Vec<u8> {
    let printable = value.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(c, ' ' | '\'' | '(' | ')' | '+' | ',' | '-' | '.')
            || matches!(c, '/' | ':' | '=' | '?')
    });
    let encoded = if printable {
        PrintableString::new(value).to_der_vec()
    } else {
        Utf8String::new(value).to_der_vec()
    };
    encoded.unwrap_or_default()
}

/// The value's DER as found in the certificate.
fn raw_der(attr: &AttributeTypeAndValue<'_>) -> Vec<u8> {
    attr.attr_value().to_der_vec().unwrap_or_default()
}

/// Go's escaping of a value in `RDNSequence.String()`.
fn escape(value: &str) -> String {
    let last = value.len().saturating_sub(1);
    let mut out = String::with_capacity(value.len());
    for (k, c) in value.char_indices() {
        let escaped = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => k == 0 || k == last,
            '#' => k == 0,
            _ => false,
        };
        if escaped {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_of(dn: rcgen::DistinguishedName) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = dn;
        let cert = params.self_signed(&key).unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.der()).unwrap();
        go_string(parsed.subject())
    }

    #[test]
    fn names_print_as_go_prints_them() {
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "US");
        dn.push(rcgen::DnType::StateOrProvinceName, "California");
        dn.push(rcgen::DnType::LocalityName, "San Francisco");
        dn.push(rcgen::DnType::OrganizationalUnitName, "admin");
        dn.push(rcgen::DnType::CommonName, "Admin@org1.example.com");
        assert_eq!(
            name_of(dn),
            "CN=Admin@org1.example.com,OU=admin,L=San Francisco,ST=California,C=US"
        );
    }

    #[test]
    fn order_escaping_and_other_attributes_follow_go() {
        let mut dn = rcgen::DistinguishedName::new();
        // Certificate order does not matter: Go reorders by attribute.
        dn.push(rcgen::DnType::CommonName, " a,b+c ");
        dn.push(rcgen::DnType::OrganizationName, "#org");
        dn.push(
            rcgen::DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
            rcgen::DnValue::Ia5String("x@y".try_into().unwrap()),
        );
        dn.push(rcgen::DnType::CountryName, "US");
        // 0x0c: UTF8String, as Go re-encodes a string with '@'.
        assert_eq!(
            name_of(dn),
            "CN=\\ a\\,b\\+c\\ ,O=\\#org,C=US,1.2.840.113549.1.9.1=#0c03784079"
        );
    }
}
