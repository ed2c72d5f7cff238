//! khorus's iceoryx2 service variant: iceoryx2's `ipc::Service` in every part but one — the
//! static configs and node details that every process reads when it opens a service or lists
//! nodes are stored as postcard, not TOML. TOML's deserialisers, monomorphised for iceoryx2's
//! config types, were 1.9 MB of code (a fifth of the `khorus` binary, nearly all of it mapped
//! in every stage) and their frames took ~300 KB of each process's main stack.
//!
//! The price: iceoryx2's own `iox2` tools cannot read khorus's services (use `khorus status`,
//! `khorus tap`); every khorus process must use this variant (it is the only one `bus` opens).

use core::fmt::Debug;

use iceoryx2::prelude::ZeroCopySend;
use iceoryx2_bb_elementary_traits::testing::abandonable::Abandonable;
use iceoryx2_cal::shm_allocator::bump_allocator::BumpAllocator;
use iceoryx2_cal::shm_allocator::pool_allocator::PoolAllocator;
use iceoryx2_cal::{
    arc_sync_policy, bag, dynamic_storage, event, hash, monitoring, reactor,
    resizable_shared_memory, serialize, shared_memory, static_storage, zero_copy_connection,
};

/// Inter-process, single-threaded ports (as `ipc::Service`), postcard-serialised configs.
#[derive(Debug, Clone)]
pub struct Ipc {}

impl iceoryx2::service::Service for Ipc {
    type StaticStorage = static_storage::recommended::Ipc;
    type ConfigSerializer = serialize::postcard::Postcard;
    type PersistentDynamicStorage<T: Debug + Send + Sync + ZeroCopySend + 'static> =
        dynamic_storage::recommended::PersistentIpc<T>;
    type Bag = bag::recommended::Recommended;
    type DynamicStorage<T: Debug + Send + Sync + ZeroCopySend + 'static> =
        dynamic_storage::recommended::Ipc<T>;
    type ServiceNameHasher = hash::recommended::Recommended;
    type SharedMemory = shared_memory::recommended::Ipc<PoolAllocator>;
    type ResizableSharedMemory = resizable_shared_memory::recommended::Ipc<PoolAllocator>;
    type Connection = zero_copy_connection::recommended::Ipc;
    type Event = event::recommended::Ipc;
    type Monitoring = monitoring::recommended::Ipc;
    type Reactor = reactor::recommended::Ipc;
    type ArcThreadSafetyPolicy<T: Send + Debug + Abandonable> =
        arc_sync_policy::single_threaded::SingleThreaded<T>;
    type BlackboardMgmt<KeyType: Send + Sync + Debug + ZeroCopySend + 'static> =
        dynamic_storage::recommended::Ipc<KeyType>;
    type BlackboardPayload = shared_memory::recommended::Ipc<BumpAllocator>;
    type UniqueId = iceoryx2::unique_id_generator::unique_system_id::UniqueSystemId;
}

impl iceoryx2::service::internal::ServiceInternal<Ipc> for Ipc {}
