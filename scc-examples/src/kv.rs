//! A key/value chaincode with the functions of Fabric's interop `kv` chaincode (put, get, del,
//! range, event, whoami, call, fail) plus composite keys, pagination, history and metadata.

use serde_json::json;
use shim::{Chaincode, ChaincodeStub, Response};

/// The key/value chaincode.
///
/// | function | arguments | result |
/// |---|---|---|
/// | `put` | key value | `ok` |
/// | `get` | key | the value; error `no such key: K` when absent |
/// | `del` | key | `ok` |
/// | `putmany` | key value key value … | writes every pair in one transaction, `ok` |
/// | `incr` | key (milliseconds) | reads the key as a number, waits the given time if any, writes it plus one, returns the new number |
/// | `range` | start end | JSON `[{"key","value"}]` of the keys in `[start, end)` |
/// | `page` | start end size bookmark | JSON `{"records","fetched","bookmark"}` |
/// | `putc` | type attr… value | puts under composite key (type, attrs) |
/// | `byprefix` | type attr… | JSON `[{"attrs","value"}]` of composite keys with that prefix |
/// | `history` | key | JSON `[{"txid","value","deleted"}]`, newest first |
/// | `setmeta` / `getmeta` | key name (value) | sets / reads a metadata entry |
/// | `event` | name payload | sets an event, `ok` |
/// | `whoami` | | JSON `{"txid","channel","mspid"}` |
/// | `pput` / `pget` | collection key (value) | writes / reads private data in a collection |
/// | `transient` | name | the value of that transient input (private, never on the ledger) |
/// | `call` | chaincode function args… | the callee's payload |
/// | `fail` | message | error with that message |
/// | `sleep` | milliseconds | waits that long, then `ok` (for tests of timeouts and crashes) |
///
/// Init seeds the key/value pairs it is given.
#[derive(Debug, Default, Clone, Copy)]
pub struct KvChaincode;

/// Text of a stored value.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl KvChaincode {
    async fn run(
        &self,
        stub: &ChaincodeStub,
        function: &str,
        p: &[String],
    ) -> shim::Result<Response> {
        let arg = |i: usize| p.get(i).map(String::as_str).unwrap_or("");
        Ok(match function {
            "put" => {
                stub.put_state(arg(0), arg(1).to_owned()).await?;
                shim::success("ok")
            }
            "pput" => {
                stub.put_private_data(arg(0), arg(1), arg(2).to_owned())
                    .await?;
                shim::success("ok")
            }
            "pget" => match stub.get_private_data(arg(0), arg(1)).await? {
                Some(v) => shim::success(v),
                None => shim::error(format!("no such private key: {}", arg(1))),
            },
            "get" => match stub.get_state(arg(0)).await? {
                Some(v) => shim::success(v),
                None => shim::error(format!("no such key: {}", arg(0))),
            },
            "del" => {
                stub.del_state(arg(0)).await?;
                shim::success("ok")
            }
            "putmany" => {
                for pair in p.chunks_exact(2) {
                    stub.put_state(&pair[0], pair[1].clone()).await?;
                }
                shim::success("ok")
            }
            "incr" => {
                let current = stub.get_state(arg(0)).await?;
                let n: i64 = match current.as_deref().map(std::str::from_utf8) {
                    None => 0,
                    Some(Ok(t)) => match t.parse() {
                        Ok(n) => n,
                        Err(_) => {
                            return Ok(shim::error(format!(
                                "{} holds {t:?}, not a number",
                                arg(0)
                            )));
                        }
                    },
                    Some(Err(_)) => {
                        return Ok(shim::error(format!("{} does not hold text", arg(0))));
                    }
                };
                if let Ok(ms) = arg(1).parse::<u64>() {
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                }
                stub.put_state(arg(0), (n + 1).to_string()).await?;
                shim::success((n + 1).to_string())
            }
            "range" => {
                let mut it = stub.get_state_by_range(arg(0), arg(1)).await?;
                let mut out = Vec::new();
                while let Some(kv) = it.next().await {
                    let kv = kv?;
                    out.push(json!({ "key": kv.key, "value": text(&kv.value) }));
                }
                it.close().await?;
                shim::success(serde_json::to_vec(&out).unwrap_or_default())
            }
            "page" => {
                let size: i32 = arg(2).parse().unwrap_or(10);
                let (it, meta) = stub
                    .get_state_by_range_with_pagination(arg(0), arg(1), size, arg(3))
                    .await?;
                let records: Vec<_> = it
                    .collect()
                    .await?
                    .into_iter()
                    .map(|kv| json!({ "key": kv.key, "value": text(&kv.value) }))
                    .collect();
                let page = json!({
                    "records": records,
                    "fetched": meta.fetched_records_count,
                    "bookmark": meta.bookmark,
                });
                shim::success(serde_json::to_vec(&page).unwrap_or_default())
            }
            "putc" if p.len() >= 2 => {
                let (attrs, value) = p[1..].split_at(p.len() - 2);
                let key = shim::create_composite_key(&p[0], attrs)?;
                stub.put_state(&key, value[0].clone()).await?;
                shim::success("ok")
            }
            "byprefix" if !p.is_empty() => {
                let attrs: Vec<&str> = p[1..].iter().map(String::as_str).collect();
                let mut it = stub
                    .get_state_by_partial_composite_key(&p[0], &attrs)
                    .await?;
                let mut out = Vec::new();
                while let Some(kv) = it.next().await {
                    let kv = kv?;
                    let (_, attrs) = shim::split_composite_key(&kv.key)?;
                    out.push(json!({ "attrs": attrs, "value": text(&kv.value) }));
                }
                shim::success(serde_json::to_vec(&out).unwrap_or_default())
            }
            "history" => {
                let records: Vec<_> = stub
                    .get_history_for_key(arg(0))
                    .await?
                    .collect()
                    .await?
                    .into_iter()
                    .map(|m| json!({ "txid": m.tx_id, "value": text(&m.value), "deleted": m.is_delete }))
                    .collect();
                shim::success(serde_json::to_vec(&records).unwrap_or_default())
            }
            "setmeta" => {
                stub.put_state_metadata(arg(0), arg(1), arg(2).to_owned())
                    .await?;
                shim::success("ok")
            }
            "getmeta" => {
                let meta = stub.get_state_metadata(arg(0)).await?;
                shim::success(meta.get(arg(1)).cloned().unwrap_or_default())
            }
            "event" => {
                stub.set_event(arg(0), arg(1).to_owned())?;
                shim::success("ok")
            }
            "whoami" => {
                let mspid = stub
                    .creator_identity()
                    .map(|id| id.mspid)
                    .unwrap_or_default();
                let me =
                    json!({ "txid": stub.tx_id(), "channel": stub.channel_id(), "mspid": mspid });
                shim::success(serde_json::to_vec(&me).unwrap_or_default())
            }
            "transient" => match stub.transient()?.get(arg(0)) {
                Some(value) => shim::success(value.clone()),
                None => shim::error(format!("no transient input {}", arg(0))),
            },
            "call" if !p.is_empty() => {
                let response = stub.invoke_chaincode(&p[0], &p[1..], "").await?;
                if response.is_error() {
                    shim::error(format!("called chaincode failed: {}", response.message))
                } else {
                    shim::success(response.payload)
                }
            }
            "sleep" => {
                let ms: u64 = arg(0).parse().unwrap_or(1000);
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                shim::success("ok")
            }
            "fail" => shim::error(if arg(0).is_empty() {
                "failed on purpose"
            } else {
                arg(0)
            }),
            other => shim::error(format!("unknown function: {other}")),
        })
    }
}

#[shim::async_trait]
impl Chaincode for KvChaincode {
    async fn init(&self, stub: &ChaincodeStub) -> Response {
        let (_, params) = stub.function_and_parameters();
        for pair in params.chunks_exact(2) {
            if let Err(e) = stub.put_state(&pair[0], pair[1].clone()).await {
                return shim::error(e.to_string());
            }
        }
        shim::success("init ok")
    }

    async fn invoke(&self, stub: &ChaincodeStub) -> Response {
        let (function, params) = stub.function_and_parameters();
        match self.run(stub, &function, &params).await {
            Ok(response) => response,
            Err(e) => shim::error(e.to_string()),
        }
    }
}
