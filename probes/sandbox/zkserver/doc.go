// Package zkserver is an in-process ZooKeeper: one standalone server speaking the
// ZooKeeper 3.8 client wire protocol (jute over TCP), for dsctl's sandbox and for tests
// that need states a shared ensemble cannot be pushed into. Any ZooKeeper client can
// use it (go-zookeeper, zkCli, Curator, kazoo).
//
// Its fidelity is checked, not assumed: the conformance suite in this package's tests
// runs the same cases against this server and against the real 3-node ensemble
// (DSCTL_TEST_ZK), with go-zookeeper and with a raw-protocol client for what
// go-zookeeper hides or refuses on the client side. So do the `dsctl zk` command tests
// (commands/zk, targets) and the zk probe's integration tests (probes/zk), through
// zktest.Run: reads, tree, chroot, digest ACLs, bad input, watch accounting under
// load, reconnect within the session and session expiry through a proxy, status.
// Only the fault tests (TestFault*: killing and stopping ensemble members) and the
// benchmarks are ensemble-only. What those runs found:
//
//   - zk status showed no zxid or epoch for a standalone member: this server, like
//     ZooKeeperServerMain (checked against a private 3.8.0 standalone server), starts
//     at zxid 0x0 and stays in epoch 0, and the command hid zero values. A dsctl bug
//     the fake exposed; the command now shows them for every member that answers.
//   - go-zookeeper v1.0.4 reads its last zxid for setWatches while its receive loop
//     may be writing it (go-zookeeper/zk#35): replies from this server come fast
//     enough for -race to report it after a reconnect. A client bug; dsctl's
//     requests now wait until the connection has settled (zk.ReconnectSettle).
//   - Event order across different nodes in a zk watch stream, and how many changes
//     one children_changed line stands for, follow timing (this server answers
//     sooner); per-node accounting is identical. Not a difference in the protocol.
//
// # Served
//
//   - Sessions: the connect handshake with timeout negotiation (clamped to
//     [MinSessionTimeout, MaxSessionTimeout], 2 and 20 ticks by default), re-attach by
//     id and password (the old connection is closed; a wrong password or an unknown
//     session gets timeout 0 and id 0, which clients report as expired), refusal of a
//     client that has seen a later zxid, ping, closeSession, and expiry checked every
//     tick: ephemerals deleted in one transaction, watchers told, the connection
//     closed.
//   - create, create2, createContainer, createTTL with every CreateMode (persistent,
//     ephemeral, sequential, ephemeral-sequential, container, TTL and sequential TTL);
//     delete, exists, getData, setData, getChildren, getChildren2, getACL, setACL,
//     sync, check and multi (atomic; per-operation results on failure: 0 before the
//     failing operation, its error, then RuntimeInconsistency), multiRead,
//     getAllChildrenNumber, getEphemerals, whoAmI.
//   - Watches: one-shot data, exists and child watches with ZooKeeper's event types
//     and order (a deletion tells a connection watching both data and children once),
//     persistent and recursive watches (addWatch), setWatches and setWatches2 on
//     reconnect (firing at once what changed after the client's last zxid),
//     checkWatches and removeWatches.
//   - Stats as ZooKeeper reports them: czxid, mzxid, pzxid from one strictly
//     increasing zxid (every write takes one, failed ones included, as ZooKeeper logs
//     error transactions), ctime and mtime in ms, version, aversion, cversion (2 x
//     children created - children present, DataNode.copyStat's formula), the
//     sequential suffix (children ever created, 10 digits), ephemeralOwner (0 for
//     containers and TTL nodes), dataLength, numChildren. Null data stays null.
//   - Errors with ZooKeeper's codes and checks in its order: NoNode (also for a
//     missing parent), NodeExists, BadVersion, NotEmpty, NoChildrenForEphemerals,
//     BadArguments (invalid paths per PathUtils.validatePath, bad flags or TTLs,
//     deleting /zookeeper), InvalidACL, NoAuth, NoWatcher, Unimplemented,
//     MarshallingError; a request that does not decode closes the connection.
//   - ACLs stored, returned and enforced: world:anyone, digest (addauth digest
//     user:password, stored as user:base64(sha1)), auth, ip (exact or CIDR); getACL
//     hides digest hashes ("user:x") from a session without ADMIN, as 3.8 does.
//   - Containers and TTL nodes reaped like ContainerManager (ContainerCheckInterval);
//     TTL nodes can be refused with DisableExtendedTypes, like a server without
//     zookeeper.extendedTypesEnabled.
//   - Four-letter words on the client port, as a standalone server with every word
//     whitelisted: ruok, isro, srvr, stat, mntr, conf, cons, wchs, envi, dump.
//   - Test hooks: Sessions, ExpireSession, DisconnectSession, Zxid; SeedDemo builds
//     the sandbox's demo tree.
//
// # Gaps (differences from a real ZooKeeper, by design or not yet done)
//
//   - One standalone server: no quorum, leader election, observers or read-only mode;
//     srvr and mntr say "standalone"; reconfig answers Unimplemented; sync has nothing
//     to wait for. An ensemble's timing (a follower answering before the leader has
//     applied a write) does not exist here.
//   - In memory only: no snapshots or transaction log; zxids start at epoch 0 and
//     everything is gone on Close (ephemerals are not deleted one by one then).
//   - Auth: digest and ip only; no SASL, Kerberos, x509, TLS or super user.
//   - Quotas are not enforced; /zookeeper/config is empty, as on a standalone server.
//   - getChildren lists children sorted; ZooKeeper's order is unspecified (a hash set).
//   - The root's cversion follows the formula above; ZooKeeper's root is stored under
//     both "" and "/" and its cversion drifts from it.
//   - mntr reports the standalone headline keys only (version, state, latency,
//     packets, connections, znodes, watches, ephemerals, sessions, data size, file
//     descriptors, uptime), not the hundreds of internal metrics; latencies are
//     measured in-process. crst, srst, wchc, wchp, dirs and the AdminServer's HTTP
//     commands are not served (an unknown word closes the connection, as ZooKeeper
//     does).
//   - In a multi, a result's type is the request's operation code; ZooKeeper uses the
//     transaction's, which differs only for opcode create carrying a container flag.
//   - No connection limits, throttling or large-request accounting; a packet larger
//     than jute.maxbuffer (1 MiB) closes the connection.
package zkserver
