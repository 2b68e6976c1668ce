//! Chaincodes and backends that misbehave on purpose.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use shim::{Chaincode, ChaincodeStub, Response};
use vm_api::{Ccid, StartRequest, Started, StopRequest, Vm};

/// Panics in `invoke("panic")`, fails Init with `init("fail")`, sleeps in `invoke("sleep", ms)`,
/// and otherwise answers `pong`.
pub struct Troublemaker;

#[async_trait]
impl Chaincode for Troublemaker {
    async fn init(&self, stub: &ChaincodeStub) -> Response {
        match stub.function_and_parameters().0.as_str() {
            "fail" => shim::error("init refused on purpose"),
            _ => shim::success("init ok"),
        }
    }

    async fn invoke(&self, stub: &ChaincodeStub) -> Response {
        let (f, p) = stub.function_and_parameters();
        match f.as_str() {
            "panic" => panic!("troublemaker panicked on purpose"),
            "sleep" => {
                let ms = p.first().and_then(|s| s.parse().ok()).unwrap_or(1000);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                shim::success("slept")
            }
            _ => shim::success("pong"),
        }
    }
}

pub fn troublemaker() -> Arc<dyn Chaincode> {
    Arc::new(Troublemaker)
}

/// Wraps a backend, counting starts, and leaving the first `swallow` starts without starting
/// anything (so the chaincode never registers).
pub struct CountingVm {
    pub inner: Arc<dyn Vm>,
    pub starts: Arc<AtomicUsize>,
    pub swallow: Arc<AtomicUsize>,
    pub start_delay: Duration,
}

#[async_trait]
impl Vm for CountingVm {
    fn builder(&self) -> Option<&dyn vm_api::Builder> {
        self.inner.builder()
    }

    async fn start(&self, req: &StartRequest) -> vm_api::Result<Started> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.start_delay).await;
        let swallowed = self
            .swallow
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if swallowed {
            return Ok(Started::Dialing);
        }
        self.inner.start(req).await
    }

    async fn stop(&self, req: &StopRequest) -> vm_api::Result<()> {
        self.inner.stop(req).await
    }

    async fn wait(&self, ccid: &Ccid) -> vm_api::Result<i64> {
        match self.inner.wait(ccid).await {
            // A swallowed start has no instance: it "runs" until stopped.
            Err(vm_api::Error::NotRunning { .. }) => std::future::pending().await,
            other => other,
        }
    }

    async fn health_check(&self) -> vm_api::Result<()> {
        Ok(())
    }

    async fn recent_output(&self, _: &Ccid) -> Vec<String> {
        vec![
            "starting up…".into(),
            "still waiting for a database that never comes".into(),
        ]
    }
}

/// A backend that starts nothing: the test plays the chaincode itself (or never registers).
pub struct Manual;

#[async_trait]
impl Vm for Manual {
    async fn start(&self, _: &StartRequest) -> vm_api::Result<Started> {
        Ok(Started::Dialing)
    }

    async fn stop(&self, _: &StopRequest) -> vm_api::Result<()> {
        Ok(())
    }

    async fn wait(&self, _: &Ccid) -> vm_api::Result<i64> {
        std::future::pending().await
    }

    async fn health_check(&self) -> vm_api::Result<()> {
        Ok(())
    }
}
