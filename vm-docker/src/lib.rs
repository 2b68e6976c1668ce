//! The Docker backend (container type `DOCKER`): user chaincodes in Docker containers.
//!
//! Skeleton only: the backend itself arrives with its own issue (build, run, supervise and
//! clean up chaincode containers through `bollard`). Until then this crate registers nothing.
