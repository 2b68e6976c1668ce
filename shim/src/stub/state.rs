//! Reading and writing single keys: world state, private data and key metadata.

use std::collections::BTreeMap;

use bytes::Bytes;
use proto::MessageType;
use proto::protos::{
    DelState, GetState, GetStateMetadata, GetStateMultiple, GetStateMultipleResult,
    PurgePrivateState, PutState, PutStateMetadata, StateMetadata, StateMetadataResult, WriteRecord,
    write_record,
};

use super::ChaincodeStub;
use crate::{Error, Result};

/// The metadata entry holding a key's endorsement policy (Fabric's `VALIDATION_PARAMETER`).
pub const VALIDATION_PARAMETER: &str = "VALIDATION_PARAMETER";

fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        Err(Error::InvalidArgument(
            "key must not be an empty string".into(),
        ))
    } else {
        Ok(())
    }
}

fn check_collection(collection: &str) -> Result<()> {
    if collection.is_empty() {
        Err(Error::InvalidArgument(
            "collection must not be an empty string".into(),
        ))
    } else {
        Ok(())
    }
}

/// The peer answers an absent key with an empty value.
fn present(value: Bytes) -> Option<Bytes> {
    (!value.is_empty()).then_some(value)
}

impl ChaincodeStub {
    /// The value of `key`, or `None` when it has none. Like Fabric, this reads the committed
    /// state: a write earlier in this transaction is not seen.
    pub async fn get_state(&self, key: &str) -> Result<Option<Bytes>> {
        self.read(key, "").await
    }

    /// Writes `value` to `key` when the transaction commits.
    pub async fn put_state(&self, key: &str, value: impl Into<Bytes>) -> Result<()> {
        self.write(key, "", value.into()).await
    }

    /// Deletes `key` when the transaction commits.
    pub async fn del_state(&self, key: &str) -> Result<()> {
        self.delete(key, "").await
    }

    /// The values of several keys in one round trip where the peer supports it (Fabric 3.1),
    /// in the order of `keys`.
    pub async fn get_multiple_states(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        self.read_multiple(keys, "").await
    }

    /// The metadata entries of `key`.
    pub async fn get_state_metadata(&self, key: &str) -> Result<BTreeMap<String, Bytes>> {
        self.read_metadata(key, "").await
    }

    /// Sets metadata entry `metakey` of `key`.
    pub async fn put_state_metadata(
        &self,
        key: &str,
        metakey: &str,
        value: impl Into<Bytes>,
    ) -> Result<()> {
        self.write_metadata(key, "", metakey, value.into()).await
    }

    /// The key-level endorsement policy of `key` (its `VALIDATION_PARAMETER` entry).
    pub async fn get_state_validation_parameter(&self, key: &str) -> Result<Option<Bytes>> {
        Ok(self
            .get_state_metadata(key)
            .await?
            .remove(VALIDATION_PARAMETER))
    }

    /// Sets the key-level endorsement policy of `key`.
    pub async fn set_state_validation_parameter(
        &self,
        key: &str,
        policy: impl Into<Bytes>,
    ) -> Result<()> {
        self.put_state_metadata(key, VALIDATION_PARAMETER, policy)
            .await
    }

    /// The value of `key` in private data `collection`.
    pub async fn get_private_data(&self, collection: &str, key: &str) -> Result<Option<Bytes>> {
        check_collection(collection)?;
        self.read(key, collection).await
    }

    /// The values of several keys of private data `collection`.
    pub async fn get_multiple_private_data(
        &self,
        collection: &str,
        keys: &[&str],
    ) -> Result<Vec<Option<Bytes>>> {
        check_collection(collection)?;
        self.read_multiple(keys, collection).await
    }

    /// The hash of the value of `key` in private data `collection`; readable by peers that do
    /// not hold the collection.
    pub async fn get_private_data_hash(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<Option<Bytes>> {
        check_collection(collection)?;
        check_key(key)?;
        let req = GetState {
            key: key.to_owned(),
            collection: collection.to_owned(),
        };
        Ok(present(
            self.tx.call(MessageType::GetPrivateDataHash, &req).await?,
        ))
    }

    /// Writes `value` to `key` of private data `collection`.
    pub async fn put_private_data(
        &self,
        collection: &str,
        key: &str,
        value: impl Into<Bytes>,
    ) -> Result<()> {
        check_collection(collection)?;
        self.write(key, collection, value.into()).await
    }

    /// Deletes `key` of private data `collection`.
    pub async fn del_private_data(&self, collection: &str, key: &str) -> Result<()> {
        check_collection(collection)?;
        self.delete(key, collection).await
    }

    /// Deletes `key` of private data `collection` together with its history (Fabric 2.5).
    pub async fn purge_private_data(&self, collection: &str, key: &str) -> Result<()> {
        check_collection(collection)?;
        check_key(key)?;
        let record = WriteRecord {
            key: key.to_owned(),
            collection: collection.to_owned(),
            r#type: write_record::Type::PurgePrivateData as i32,
            ..WriteRecord::default()
        };
        if let Some(record) = self.tx.batch(record) {
            let req = PurgePrivateState {
                key: record.key,
                collection: record.collection,
            };
            self.tx.call(MessageType::PurgePrivateData, &req).await?;
        }
        Ok(())
    }

    /// The metadata entries of `key` in private data `collection`.
    pub async fn get_private_data_metadata(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<BTreeMap<String, Bytes>> {
        check_collection(collection)?;
        self.read_metadata(key, collection).await
    }

    /// Sets metadata entry `metakey` of `key` in private data `collection`.
    pub async fn put_private_data_metadata(
        &self,
        collection: &str,
        key: &str,
        metakey: &str,
        value: impl Into<Bytes>,
    ) -> Result<()> {
        check_collection(collection)?;
        self.write_metadata(key, collection, metakey, value.into())
            .await
    }

    async fn read(&self, key: &str, collection: &str) -> Result<Option<Bytes>> {
        check_key(key)?;
        let req = GetState {
            key: key.to_owned(),
            collection: collection.to_owned(),
        };
        Ok(present(self.tx.call(MessageType::GetState, &req).await?))
    }

    async fn read_multiple(&self, keys: &[&str], collection: &str) -> Result<Vec<Option<Bytes>>> {
        for key in keys {
            check_key(key)?;
        }
        let Some(max) = self.tx.handler.params().get_multiple else {
            let mut values = Vec::with_capacity(keys.len());
            for key in keys {
                values.push(self.read(key, collection).await?);
            }
            return Ok(values);
        };
        let max = if max == 0 { usize::MAX } else { max as usize };
        let mut values = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(max) {
            let req = GetStateMultiple {
                keys: chunk.iter().map(|k| (*k).to_owned()).collect(),
                collection: collection.to_owned(),
            };
            let result: GetStateMultipleResult = self
                .tx
                .call_decode(
                    MessageType::GetStateMultiple,
                    &req,
                    "GetStateMultipleResult",
                )
                .await?;
            if result.values.len() != chunk.len() {
                return Err(Error::Protocol(format!(
                    "asked for {} keys, the peer returned {} values",
                    chunk.len(),
                    result.values.len()
                )));
            }
            values.extend(result.values.into_iter().map(present));
        }
        Ok(values)
    }

    async fn write(&self, key: &str, collection: &str, value: Bytes) -> Result<()> {
        check_key(key)?;
        let record = WriteRecord {
            key: key.to_owned(),
            value,
            collection: collection.to_owned(),
            r#type: write_record::Type::PutState as i32,
            ..WriteRecord::default()
        };
        if let Some(record) = self.tx.batch(record) {
            let req = PutState {
                key: record.key,
                value: record.value,
                collection: record.collection,
            };
            self.tx.call(MessageType::PutState, &req).await?;
        }
        Ok(())
    }

    async fn delete(&self, key: &str, collection: &str) -> Result<()> {
        check_key(key)?;
        let record = WriteRecord {
            key: key.to_owned(),
            collection: collection.to_owned(),
            r#type: write_record::Type::DelState as i32,
            ..WriteRecord::default()
        };
        if let Some(record) = self.tx.batch(record) {
            let req = DelState {
                key: record.key,
                collection: record.collection,
            };
            self.tx.call(MessageType::DelState, &req).await?;
        }
        Ok(())
    }

    async fn read_metadata(&self, key: &str, collection: &str) -> Result<BTreeMap<String, Bytes>> {
        check_key(key)?;
        let req = GetStateMetadata {
            key: key.to_owned(),
            collection: collection.to_owned(),
        };
        let result: StateMetadataResult = self
            .tx
            .call_decode(MessageType::GetStateMetadata, &req, "StateMetadataResult")
            .await?;
        Ok(result
            .entries
            .into_iter()
            .map(|e| (e.metakey, e.value))
            .collect())
    }

    async fn write_metadata(
        &self,
        key: &str,
        collection: &str,
        metakey: &str,
        value: Bytes,
    ) -> Result<()> {
        check_key(key)?;
        let metadata = StateMetadata {
            metakey: metakey.to_owned(),
            value,
        };
        let record = WriteRecord {
            key: key.to_owned(),
            collection: collection.to_owned(),
            metadata: Some(metadata),
            r#type: write_record::Type::PutStateMetadata as i32,
            ..WriteRecord::default()
        };
        if let Some(record) = self.tx.batch(record) {
            let req = PutStateMetadata {
                key: record.key,
                collection: record.collection,
                metadata: record.metadata,
            };
            self.tx.call(MessageType::PutStateMetadata, &req).await?;
        }
        Ok(())
    }
}
