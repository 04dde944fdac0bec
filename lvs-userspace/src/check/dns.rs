//! DNS_CHECK (keepalived check_dns.c): one query over UDP (recursion
//! desired, class IN, the configured type and name), success when a
//! response with our id arrives with rcode NOERROR within
//! `connect_timeout`. Messages are built and parsed by hickory-proto.

use hickory_proto::{
    op::{Message, MessageType, OpCode, Query, ResponseCode},
    rr::{Name, RecordType},
    serialize::binary::BinDecodable,
};

use super::{
    error::CheckError,
    spec::{Conn, DnsSpec},
    udp,
};

fn record_type(t: &str) -> RecordType {
    match t.to_ascii_uppercase().as_str() {
        "A" => RecordType::A,
        "NS" => RecordType::NS,
        "CNAME" => RecordType::CNAME,
        "MX" => RecordType::MX,
        "TXT" => RecordType::TXT,
        "AAAA" => RecordType::AAAA,
        "RRSIG" => RecordType::RRSIG,
        "DNSKEY" => RecordType::DNSKEY,
        _ => RecordType::SOA,
    }
}

/// The query keepalived sends (`dns_make_query`).
pub fn query(spec: &DnsSpec, id: u16) -> Result<Vec<u8>, CheckError> {
    let name = Name::from_ascii(&spec.name)
        .map_err(|e| CheckError::Invalid(format!("DNS name {}: {e}", spec.name)))?;
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(name, record_type(&spec.qtype)));
    m.to_vec()
        .map_err(|e| CheckError::Invalid(format!("DNS query: {e}")))
}

/// keepalived's reading of a datagram: `None` to keep waiting (too short,
/// another id, not a response), else the verdict.
pub fn judge(reply: &[u8], id: u16) -> Option<Result<(), CheckError>> {
    let m = Message::from_bytes(reply).ok()?;
    if m.id() != id || m.message_type() != MessageType::Response {
        return None;
    }
    match m.response_code() {
        ResponseCode::NoError => Some(Ok(())),
        rc => Some(Err(CheckError::Rcode(u16::from(rc)))),
    }
}

/// One DNS_CHECK attempt.
pub async fn check(conn: &Conn, spec: &DnsSpec) -> Result<(), CheckError> {
    let sock = udp::connect(conn).await?;
    let id: u16 = rand_id();
    let q = query(spec, id)?;
    let exchange = async {
        sock.send(&q).await.map_err(CheckError::Send)?;
        let mut buf = [0u8; 4096];
        loop {
            let n = sock.recv(&mut buf).await.map_err(CheckError::Read)?;
            if let Some(v) = judge(&buf[..n], id) {
                return v;
            }
        }
    };
    tokio::time::timeout(conn.connect_timeout, exchange)
        .await
        .unwrap_or(Err(CheckError::ReadTimeout(conn.connect_timeout)))
}

/// A random query id (keepalived uses random()); RandomState's keys are
/// random.
fn rand_id() -> u16 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0u8) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_response_round_trip() {
        let spec = DnsSpec {
            qtype: "a".into(),
            name: "www.example.test".into(),
        };
        let q = query(&spec, 0x4242).unwrap();
        let m = Message::from_bytes(&q).unwrap();
        assert!(m.recursion_desired());
        assert_eq!(m.queries()[0].query_type(), RecordType::A);
        assert_eq!(m.queries()[0].name().to_ascii(), "www.example.test.");
        // A query is not an answer; a response with our id is.
        assert!(judge(&q, 0x4242).is_none());
        let mut r = m.clone();
        r.set_message_type(MessageType::Response);
        let bytes = r.to_vec().unwrap();
        assert!(matches!(judge(&bytes, 0x4242), Some(Ok(()))));
        assert!(judge(&bytes, 0x4243).is_none());
        r.set_response_code(ResponseCode::ServFail);
        let bytes = r.to_vec().unwrap();
        assert!(matches!(
            judge(&bytes, 0x4242),
            Some(Err(CheckError::Rcode(2)))
        ));
        assert!(judge(&[1, 2, 3], 0x4242).is_none());
    }

    #[test]
    fn root_is_the_default_name() {
        let spec = DnsSpec {
            qtype: "SOA".into(),
            name: ".".into(),
        };
        let m = Message::from_bytes(&query(&spec, 1).unwrap()).unwrap();
        assert!(m.queries()[0].name().is_root());
        assert_eq!(m.queries()[0].query_type(), RecordType::SOA);
    }
}
