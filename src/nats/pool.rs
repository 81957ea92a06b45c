//! Connections shared by every bucket with the same effective settings.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use super::connect::{Connection, ConnectionSettings, connect};
use super::errors::NatsError;

/// Open connections by a hash of their settings (secrets included, never shown), so a
/// rotated credential gets a new connection.
#[derive(Default)]
pub struct Pool {
    connections: tokio::sync::Mutex<HashMap<u64, Connection>>,
}

impl Pool {
    /// The identity of a set of settings in the pool.
    pub fn key(settings: &ConnectionSettings) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        settings.hash(&mut hasher);
        hasher.finish()
    }

    /// A connection for `settings`, opened on first use. Failed connections are not kept.
    pub async fn get(&self, settings: &ConnectionSettings) -> Result<(u64, Connection), NatsError> {
        let key = Self::key(settings);
        let mut connections = self.connections.lock().await;
        if let Some(connection) = connections.get(&key) {
            return Ok((key, connection.clone()));
        }
        let connection = connect(settings).await?;
        connections.insert(key, connection.clone());
        Ok((key, connection))
    }
}
