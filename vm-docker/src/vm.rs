//! The Docker backend: build, run, supervise and clean up chaincode containers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    BuildImageOptions, CreateContainerOptions, KillContainerOptions, ListContainersOptions,
    ListImagesOptions, LogsOptions, RemoveContainerOptions, RemoveImageOptions,
    StopContainerOptions, UploadToContainerOptions, WaitContainerOptions,
};
use futures::StreamExt;
use tokio::sync::{OnceCell, watch};
use vm_api::archive::Archive;
use vm_api::{
    BuildOutcome, BuildRequest, Builder, Ccid, ChaincodePackage, Error, FABRIC_TLS_DIR, Platform,
    RecentOutput, Result, StartRequest, Started, StopRequest, Vm,
};

use crate::config::{
    DockerConfig, LABEL_CC_NAME, LABEL_CC_TYPE, LABEL_CC_VERSION, LABEL_NETWORK_ID, LABEL_PEER_ID,
};
use crate::naming::{Names, names};

/// Output of the current container of one chaincode.
struct Output {
    recent: RecentOutput,
    /// Becomes true once the container's output stream ended.
    drained: watch::Receiver<bool>,
}

/// Runs chaincodes in Docker containers (container type `DOCKER`).
///
/// The client connects on first use: it negotiates the API version with the daemon, checks
/// that the daemon answers, and removes the containers a previous run of this peer left
/// behind (those labelled with this peer's and network's ids, no others).
pub struct DockerVm {
    config: DockerConfig,
    client: OnceCell<Docker>,
    outputs: Mutex<HashMap<Ccid, Output>>,
}

impl std::fmt::Debug for DockerVm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerVm")
            .field("endpoint", &self.config.endpoint)
            .field("peer_id", &self.config.peer_id)
            .field("network_id", &self.config.network_id)
            .finish_non_exhaustive()
    }
}

/// The daemon's HTTP status of a failed call, if it answered.
fn status(e: &DockerError) -> Option<u16> {
    match e {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

fn backend(context: &str, e: DockerError) -> Error {
    Error::Backend {
        backend: "docker",
        message: context.to_owned(),
        source: Some(Box::new(e)),
    }
}

impl DockerVm {
    /// A backend with `config`; nothing is contacted until first use.
    pub fn new(config: DockerConfig) -> Self {
        Self {
            config,
            client: OnceCell::new(),
            outputs: Mutex::new(HashMap::new()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DockerConfig {
        &self.config
    }

    fn unreachable(&self, e: DockerError) -> Error {
        Error::Unreachable {
            backend: "Docker",
            endpoint: self.config.endpoint.clone(),
            source: Box::new(e),
        }
    }

    fn connect(&self) -> Result<Docker> {
        let endpoint = self.config.endpoint.as_str();
        let timeout = self.config.timeout_secs;
        let version = bollard::API_DEFAULT_VERSION;
        self.config.check_endpoint()?;
        let client = if let Some(path) = endpoint.strip_prefix("unix://") {
            Docker::connect_with_socket(path, timeout, version)
        } else if let Some(address) = endpoint.strip_prefix("tcp://") {
            Docker::connect_with_http(&format!("http://{address}"), timeout, version)
        } else {
            Docker::connect_with_http(endpoint, timeout, version)
        };
        client.map_err(|e| self.unreachable(e))
    }

    /// The connected client (connecting, negotiating and cleaning up on first use).
    pub async fn docker(&self) -> Result<&Docker> {
        self.client
            .get_or_try_init(|| async {
                let docker = self
                    .connect()?
                    .negotiate_version()
                    .await
                    .map_err(|e| self.unreachable(e))?;
                docker.ping().await.map_err(|e| self.unreachable(e))?;
                let removed = self.remove_leftovers(&docker).await?;
                if removed > 0 {
                    tracing::info!(
                        removed,
                        "removed containers left by a previous run of this peer"
                    );
                }
                Ok(docker)
            })
            .await
    }

    fn names(&self, ccid: &Ccid) -> Result<Names> {
        names(&self.config.network_id, &self.config.peer_id, ccid)
    }

    /// Labels saying which peer (and network) owns something.
    fn ownership(&self) -> Vec<(String, String)> {
        vec![
            (LABEL_PEER_ID.into(), self.config.peer_id.clone()),
            (LABEL_NETWORK_ID.into(), self.config.network_id.clone()),
        ]
    }

    fn ownership_filter(&self) -> HashMap<String, Vec<String>> {
        let labels = self
            .ownership()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        HashMap::from([("label".to_owned(), labels)])
    }

    /// Removes every container of this peer (its ids' labels), running or not.
    async fn remove_leftovers(&self, docker: &Docker) -> Result<usize> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(self.ownership_filter()),
            ..ListContainersOptions::default()
        };
        let containers = docker
            .list_containers(Some(options))
            .await
            .map_err(|e| backend("cannot list this peer's containers", e))?;
        let mut removed = 0;
        for c in containers {
            let Some(id) = c.id else { continue };
            let force = RemoveContainerOptions {
                force: true,
                v: true,
                ..RemoveContainerOptions::default()
            };
            match docker.remove_container(&id, Some(force)).await {
                Ok(()) => removed += 1,
                Err(e) if status(&e) == Some(404) => {}
                Err(e) => {
                    return Err(backend(
                        &format!("cannot remove leftover container {id}"),
                        e,
                    ));
                }
            }
        }
        Ok(removed)
    }

    /// Removes the images this peer built for chaincodes not in `keep`; returns their names.
    pub async fn remove_unused_images(&self, keep: &[Ccid]) -> Result<Vec<String>> {
        let docker = self.docker().await?;
        let options = ListImagesOptions {
            filters: Some(self.ownership_filter()),
            ..ListImagesOptions::default()
        };
        let images = docker
            .list_images(Some(options))
            .await
            .map_err(|e| backend("cannot list this peer's images", e))?;
        let mut removed = Vec::new();
        for image in images {
            let label = |k: &str| image.labels.get(k).cloned().unwrap_or_default();
            let ccid = Ccid::new(label(LABEL_CC_NAME), label(LABEL_CC_VERSION));
            if keep.contains(&ccid) {
                continue;
            }
            let name = image
                .repo_tags
                .first()
                .cloned()
                .unwrap_or_else(|| image.id.clone());
            match docker
                .remove_image(
                    &image.id,
                    Some(RemoveImageOptions {
                        force: true,
                        ..Default::default()
                    }),
                    None,
                )
                .await
            {
                Ok(_) => removed.push(name),
                Err(e) if status(&e) == Some(404) => {}
                Err(e) => return Err(backend(&format!("cannot remove image {name}"), e)),
            }
        }
        Ok(removed)
    }

    /// Builds `names.image` from the platform's build context, streaming the build output
    /// into the log and keeping its last lines for the error.
    async fn build_image(
        &self,
        docker: &Docker,
        ccid: &Ccid,
        package: &ChaincodePackage,
        platform: &'static dyn Platform,
        names: &Names,
    ) -> Result<()> {
        let build_error = |message: String, output: Vec<String>| Error::Build {
            ccid: ccid.clone(),
            message,
            output,
        };
        let (code, settings) = (package.code.clone(), self.config.settings.clone());
        let context = tokio::task::spawn_blocking(move || platform.build_context(&code, &settings))
            .await
            .map_err(|e| {
                build_error(
                    format!("assembling the build context failed: {e}"),
                    Vec::new(),
                )
            })?
            .map_err(|e| build_error(e.to_string(), Vec::new()))?;
        let mut labels: HashMap<String, String> = self.ownership().into_iter().collect();
        labels.insert(LABEL_CC_NAME.into(), ccid.name().into());
        labels.insert(LABEL_CC_VERSION.into(), ccid.version().into());
        labels.insert(LABEL_CC_TYPE.into(), package.kind.clone());
        let options = BuildImageOptions {
            dockerfile: "Dockerfile".into(),
            t: Some(names.image.clone()),
            rm: true,
            forcerm: true,
            labels: Some(labels),
            ..BuildImageOptions::default()
        };
        tracing::info!(chaincode = %ccid, image = %names.image, "building the chaincode image");
        let output = RecentOutput::new(self.config.output_lines);
        let mut failure = None;
        let mut stream = docker.build_image(options, None, Some(bollard::body_full(context)));
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(text) = info.stream.as_deref() {
                        for line in text.lines().filter(|l| !l.trim().is_empty()) {
                            tracing::info!(target: "chaincode", chaincode = %ccid, stream = "build", "{line}");
                            output.push(line);
                        }
                    }
                    if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                        output.push(detail.clone());
                        failure.get_or_insert(detail);
                    }
                }
                Err(e) => {
                    output.push(e.to_string());
                    failure.get_or_insert(e.to_string());
                }
            }
        }
        match failure {
            Some(message) => Err(build_error(message, output.snapshot())),
            None => Ok(()),
        }
    }

    async fn create(
        &self,
        docker: &Docker,
        req: &StartRequest,
        cmd: &[String],
        names: &Names,
    ) -> std::result::Result<(), DockerError> {
        let mut labels: HashMap<String, String> = self.ownership().into_iter().collect();
        labels.insert(LABEL_CC_NAME.into(), req.ccid.name().into());
        labels.insert(LABEL_CC_VERSION.into(), req.ccid.version().into());
        let body = ContainerCreateBody {
            image: Some(names.image.clone()),
            cmd: (!cmd.is_empty()).then(|| cmd.to_vec()),
            env: Some(
                req.environment(FABRIC_TLS_DIR)
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect(),
            ),
            labels: Some(labels),
            host_config: Some(self.config.host_config.clone()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            ..ContainerCreateBody::default()
        };
        let options = CreateContainerOptions {
            name: Some(names.container.clone()),
            ..CreateContainerOptions::default()
        };
        docker
            .create_container(Some(options), body)
            .await
            .map(|_| ())
    }

    /// Streams the container's output into the log and the chaincode's recent lines.
    fn follow_output(&self, docker: &Docker, ccid: &Ccid, container: &str) {
        let recent = RecentOutput::new(self.config.output_lines);
        let (drained_tx, drained) = watch::channel(false);
        self.outputs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                ccid.clone(),
                Output {
                    recent: recent.clone(),
                    drained,
                },
            );
        let options = LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            ..LogsOptions::default()
        };
        let mut logs = docker.logs(container, Some(options));
        let name = ccid.registered_name();
        tokio::spawn(async move {
            while let Some(Ok(chunk)) = logs.next().await {
                let raw = String::from_utf8_lossy(chunk.as_ref());
                let text = vm_api::output::clean_line(&raw);
                for line in text.lines() {
                    tracing::info!(target: "chaincode", chaincode = %name, "{line}");
                }
                recent.push_text(&text);
            }
            let _ = drained_tx.send(true);
        });
    }

    async fn remove_quietly(&self, docker: &Docker, container: &str) {
        let force = RemoveContainerOptions {
            force: true,
            v: true,
            ..RemoveContainerOptions::default()
        };
        match docker.remove_container(container, Some(force)).await {
            Ok(()) => tracing::debug!(container, "removed the previous container"),
            Err(e) if status(&e) == Some(404) => {}
            Err(e) => tracing::warn!(container, error = %e, "cannot remove the previous container"),
        }
    }
}

/// How one step of stopping a container went.
enum Step {
    Done,
    /// The container does not exist.
    Missing,
    Failed(Error),
}

/// The outcome of stopping: the first real failure (not the last, as Fabric returned), or
/// [`Error::NotRunning`] when there was no container at all.
fn stop_outcome(ccid: &Ccid, steps: Vec<Step>) -> Result<()> {
    if !steps.is_empty() && steps.iter().all(|s| matches!(s, Step::Missing)) {
        return Err(Error::NotRunning { ccid: ccid.clone() });
    }
    match steps.into_iter().find_map(|s| match s {
        Step::Failed(e) => Some(e),
        _ => None,
    }) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The TLS files to upload into Fabric's folder, as a tar archive rooted at `/`; `None`
/// without TLS.
fn files_archive(req: &StartRequest) -> Result<Option<bytes::Bytes>> {
    let files = req.tls_files();
    if files.is_empty() {
        return Ok(None);
    }
    let io = |e| Error::io(format!("chaincode {}: cannot pack its files", req.ccid), e);
    let mut archive = Archive::new();
    for (name, contents) in files {
        archive
            .file(&format!("{FABRIC_TLS_DIR}/{name}"), &contents, 0o644)
            .map_err(io)?;
    }
    archive.finish().map(Some).map_err(io)
}

/// Builds images of packages whose type has a platform; declines the others.
#[async_trait]
impl Builder for DockerVm {
    async fn build(&self, req: &BuildRequest) -> Result<BuildOutcome> {
        let Some(platform) = req.platform else {
            return Ok(BuildOutcome::Declined {
                reason: format!(
                    "no platform builds images of packages of type {:?}",
                    req.package.kind
                ),
            });
        };
        let docker = self.docker().await?;
        let names = self.names(&req.ccid)?;
        match docker.inspect_image(&names.image).await {
            Ok(_) => {}
            Err(e) if status(&e) == Some(404) => {
                self.build_image(docker, &req.ccid, &req.package, platform, &names)
                    .await?;
            }
            Err(e) => return Err(backend(&format!("cannot inspect image {}", names.image), e)),
        }
        Ok(BuildOutcome::Built {
            detail: format!("image {}", names.image),
        })
    }
}

#[async_trait]
impl Vm for DockerVm {
    fn builder(&self) -> Option<&dyn Builder> {
        Some(self)
    }

    async fn start(&self, req: &StartRequest) -> Result<Started> {
        let (package, platform) = req.package_and_platform()?;
        let docker = self.docker().await?;
        let names = self.names(&req.ccid)?;
        let cmd = platform.image_command(&req.peer.address);
        // Packed before anything is created, so a failure here leaves nothing behind.
        let files = files_archive(req)?;
        // Like Fabric, whatever is left of an earlier container is replaced; it is removed
        // when the name is taken (409), which saves a call in the usual case.
        let cannot_create = |e| backend(&format!("cannot create container {}", names.container), e);
        let mut created = self.create(docker, req, &cmd, &names).await;
        if created.as_ref().err().and_then(status) == Some(409) {
            self.remove_quietly(docker, &names.container).await;
            created = self.create(docker, req, &cmd, &names).await;
        }
        match created {
            Ok(()) => {}
            Err(e) if status(&e) == Some(404) => {
                self.build_image(docker, &req.ccid, package, platform, &names)
                    .await?;
                self.create(docker, req, &cmd, &names)
                    .await
                    .map_err(cannot_create)?;
            }
            Err(e) => return Err(cannot_create(e)),
        }
        if let Some(files) = files {
            let options = UploadToContainerOptions {
                path: "/".into(),
                ..UploadToContainerOptions::default()
            };
            if let Err(e) = docker
                .upload_to_container(&names.container, Some(options), bollard::body_full(files))
                .await
            {
                self.remove_quietly(docker, &names.container).await;
                return Err(backend(
                    &format!("cannot upload files into {}", names.container),
                    e,
                ));
            }
        }
        if let Err(e) = docker.start_container(&names.container, None).await {
            self.remove_quietly(docker, &names.container).await;
            return Err(backend(
                &format!("cannot start container {}", names.container),
                e,
            ));
        }
        self.follow_output(docker, &req.ccid, &names.container);
        tracing::info!(chaincode = %req.ccid, container = %names.container, "container started");
        Ok(Started::Dialing)
    }

    async fn stop(&self, req: &StopRequest) -> Result<()> {
        let docker = self.docker().await?;
        let container = self.names(&req.ccid)?.container;
        // `fine`: a status that means the step has nothing to do.
        let step = |what: &str, result: std::result::Result<(), DockerError>, fine: Option<u16>| {
            match result {
                Ok(()) => Step::Done,
                Err(e) if fine.is_some() && status(&e) == fine => Step::Done,
                Err(e) if status(&e) == Some(404) => Step::Missing,
                Err(e) => Step::Failed(backend(&format!("cannot {what} {container}"), e)),
            }
        };
        let mut steps = Vec::with_capacity(3);
        let seconds = i32::try_from(req.timeout.as_secs_f64().ceil() as i64).unwrap_or(i32::MAX);
        let stop = StopContainerOptions {
            t: Some(seconds),
            ..StopContainerOptions::default()
        };
        // 304: it was stopped already.
        steps.push(step(
            "stop",
            docker.stop_container(&container, Some(stop)).await,
            Some(304),
        ));
        if !req.dont_kill {
            let kill = KillContainerOptions {
                signal: "SIGKILL".into(),
            };
            // 409: it is not running (any more).
            steps.push(step(
                "kill",
                docker.kill_container(&container, Some(kill)).await,
                Some(409),
            ));
        }
        if !req.dont_remove {
            let remove = RemoveContainerOptions {
                force: true,
                v: true,
                ..RemoveContainerOptions::default()
            };
            steps.push(step(
                "remove",
                docker.remove_container(&container, Some(remove)).await,
                None,
            ));
        }
        stop_outcome(&req.ccid, steps)
    }

    async fn wait(&self, ccid: &Ccid) -> Result<i64> {
        let docker = self.docker().await?;
        let container = self.names(ccid)?.container;
        let options = WaitContainerOptions {
            condition: "not-running".into(),
        };
        let code = match docker
            .wait_container(&container, Some(options))
            .next()
            .await
        {
            Some(Ok(response)) => response.status_code,
            // bollard reports a non-zero exit as an error carrying the code.
            Some(Err(DockerError::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) if status(&e) == Some(404) => {
                return Err(Error::NotRunning { ccid: ccid.clone() });
            }
            Some(Err(e)) => return Err(backend(&format!("cannot wait for {container}"), e)),
            None => return Err(Error::NotRunning { ccid: ccid.clone() }),
        };
        // Let the output stream take in the last lines before anyone asks for them.
        let drained = self
            .outputs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(ccid)
            .map(|o| o.drained.clone());
        if let Some(mut drained) = drained {
            let _ = tokio::time::timeout(Duration::from_secs(1), drained.wait_for(|d| *d)).await;
        }
        Ok(code)
    }

    async fn health_check(&self) -> Result<()> {
        let docker = self.docker().await?;
        docker
            .ping()
            .await
            .map(|_| ())
            .map_err(|e| self.unreachable(e))
    }

    async fn recent_output(&self, ccid: &Ccid) -> Vec<String> {
        self.outputs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(ccid)
            .map(|o| o.recent.snapshot())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(what: &str) -> Step {
        Step::Failed(Error::Backend {
            backend: "docker",
            message: what.into(),
            source: None,
        })
    }

    #[test]
    fn stopping_reports_the_first_real_failure() {
        let id = Ccid::new("cc", "1");
        let e =
            stop_outcome(&id, vec![failed("stop"), failed("kill"), failed("remove")]).unwrap_err();
        assert_eq!(e.to_string(), "docker: stop");
        let e = stop_outcome(&id, vec![Step::Done, failed("kill"), failed("remove")]).unwrap_err();
        assert_eq!(e.to_string(), "docker: kill");
        assert!(stop_outcome(&id, vec![Step::Done, Step::Missing, Step::Done]).is_ok());
        let e = stop_outcome(&id, vec![Step::Missing, Step::Missing]).unwrap_err();
        assert!(matches!(e, Error::NotRunning { .. }));
    }
}
