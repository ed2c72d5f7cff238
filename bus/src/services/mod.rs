//! One module per bus service: its payload, its service path and its quality of service.
//!
//! Hot-path payloads are fixed-size `#[repr(C)]` types deriving `ZeroCopySend`, each with a
//! versioned iceoryx2 type name: a layout change bumps the version, so an old process and a new
//! one refuse to connect instead of misreading each other's memory.

pub mod curves;
pub mod ids;
pub mod notes;
pub mod signals;
pub mod status;
pub mod transport;

/// Where a stage's commands are served (`khorus/cmd/<stage>`).
pub fn command_service(stage: crate::StageKind) -> String {
    format!("khorus/cmd/{}", stage.name())
}

/// Serde helper: a `Vec<(K, V)>` written as a map, keeping its order (JSON objects in table
/// order read better than arrays of pairs).
pub(crate) mod pairs_as_map {
    use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
    use serde::ser::{Serialize, SerializeMap, Serializer};
    use std::marker::PhantomData;

    pub fn serialize<S, K, V>(pairs: &[(K, V)], s: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        K: Serialize,
        V: Serialize,
    {
        let mut map = s.serialize_map(Some(pairs.len()))?;
        for (k, v) in pairs {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }

    pub fn deserialize<'de, D, K, V>(d: D) -> Result<Vec<(K, V)>, D::Error>
    where
        D: Deserializer<'de>,
        K: Deserialize<'de>,
        V: Deserialize<'de>,
    {
        struct Pairs<K, V>(PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for Pairs<K, V> {
            type Value = Vec<(K, V)>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = a.next_entry()? {
                    out.push(entry);
                }
                Ok(out)
            }
        }
        d.deserialize_map(Pairs(PhantomData))
    }
}
