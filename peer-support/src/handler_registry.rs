//! The handler registry: which chaincodes are registered, and which are being launched.
//!
//! Unlike Fabric, a refused duplicate registration never touches the registered handler, and
//! a handler is only ever removed by the stream that registered it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::handler::Handler;
use crate::{Error, Result};

/// The outcome of one launch, shared by every caller waiting for it.
pub(crate) struct LaunchState {
    done: watch::Sender<Option<Result<(), Arc<Error>>>>,
}

impl LaunchState {
    fn new() -> Self {
        Self {
            done: watch::Sender::new(None),
        }
    }

    /// Sets the outcome; the first one wins.
    pub(crate) fn notify(&self, outcome: Result<(), Arc<Error>>) {
        self.done.send_if_modified(|v| {
            if v.is_none() {
                *v = Some(outcome);
                true
            } else {
                false
            }
        });
    }

    /// Waits for the outcome.
    pub(crate) async fn wait(&self) -> Result<(), Arc<Error>> {
        let mut rx = self.done.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone().unwrap_or(Ok(())),
            // The sender lives in `self`, so it cannot be dropped while we wait.
            Err(_) => Err(Arc::new(Error::ShuttingDown)),
        }
    }
}

#[derive(Default)]
struct Inner {
    handlers: HashMap<String, Arc<Handler>>,
    launching: HashMap<String, Arc<LaunchState>>,
}

/// Registered handlers and launches in progress, by registered name (`name:version`).
pub struct HandlerRegistry {
    inner: Mutex<Inner>,
    dev_mode: bool,
}

impl std::fmt::Debug for HandlerRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("HandlerRegistry")
            .field("handlers", &inner.handlers.keys().collect::<Vec<_>>())
            .field("launching", &inner.launching.keys().collect::<Vec<_>>())
            .field("dev_mode", &self.dev_mode)
            .finish()
    }
}

impl HandlerRegistry {
    /// An empty registry; in dev mode it accepts chaincodes the peer did not launch.
    pub fn new(dev_mode: bool) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            dev_mode,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The launch state of `name`, and whether it already existed (someone else launches).
    pub(crate) fn launching(&self, name: &str) -> (Arc<LaunchState>, bool) {
        let mut inner = self.lock();
        match inner.launching.get(name) {
            Some(state) => (Arc::clone(state), true),
            None => {
                let state = Arc::new(LaunchState::new());
                inner.launching.insert(name.to_owned(), Arc::clone(&state));
                (state, false)
            }
        }
    }

    /// Registers `handler` as `name`. Refuses a name that is registered already (leaving the
    /// registered handler alone) and, outside dev mode, a chaincode the peer is not launching.
    pub(crate) fn register(&self, name: &str, handler: Arc<Handler>) -> Result<()> {
        let mut inner = self.lock();
        if inner.handlers.contains_key(name) {
            return Err(Error::RegistrationRefused {
                name: name.to_owned(),
                reason: format!("duplicate chaincode {name} registered"),
            });
        }
        if !self.dev_mode && !inner.launching.contains_key(name) {
            return Err(Error::RegistrationRefused {
                name: name.to_owned(),
                reason: format!(
                    "peer will not accept external chaincode connection {name} (except in dev mode)"
                ),
            });
        }
        inner.handlers.insert(name.to_owned(), handler);
        Ok(())
    }

    /// Marks the launch of `name` successful: its handler is ready.
    pub(crate) fn ready(&self, name: &str) {
        let state = self.lock().launching.get(name).cloned();
        if let Some(state) = state {
            state.notify(Ok(()));
        }
    }

    /// Fails the launch of `name` (if one is under way) with `error`.
    pub(crate) fn failed(&self, name: &str, error: Arc<Error>) {
        let state = self.lock().launching.get(name).cloned();
        if let Some(state) = state {
            state.notify(Err(error));
        }
    }

    /// Removes the launch of `name` and its handler, if any: the chaincode is gone.
    pub(crate) fn remove_launch(&self, name: &str, state: &Arc<LaunchState>) {
        let mut inner = self.lock();
        if inner
            .launching
            .get(name)
            .is_some_and(|s| Arc::ptr_eq(s, state))
        {
            inner.launching.remove(name);
            inner.handlers.remove(name);
        }
    }

    /// Removes `handler` if it is the one registered as `name`, with its launch entry, so
    /// the next launch starts afresh. A handler that was refused removes nothing.
    pub(crate) fn deregister(&self, name: &str, handler: &Arc<Handler>) -> bool {
        let mut inner = self.lock();
        if inner
            .handlers
            .get(name)
            .is_some_and(|h| Arc::ptr_eq(h, handler))
        {
            inner.handlers.remove(name);
            inner.launching.remove(name);
            true
        } else {
            false
        }
    }

    /// The handler registered as `name`.
    pub(crate) fn handler(&self, name: &str) -> Option<Arc<Handler>> {
        self.lock().handlers.get(name).cloned()
    }

    /// The names of the registered chaincodes, sorted.
    pub fn registered(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lock().handlers.keys().cloned().collect();
        names.sort();
        names
    }

    /// The names of the chaincodes being launched or running (launched by this peer), sorted.
    pub fn launched(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lock().launching.keys().cloned().collect();
        names.sort();
        names
    }
}
