package zkserver

// Operation codes (ZooDefs.OpCode).
const (
	opNotification    = 0
	opCreate          = 1
	opDelete          = 2
	opExists          = 3
	opGetData         = 4
	opSetData         = 5
	opGetACL          = 6
	opSetACL          = 7
	opGetChildren     = 8
	opSync            = 9
	opPing            = 11
	opGetChildren2    = 12
	opCheck           = 13
	opMulti           = 14
	opCreate2         = 15
	opReconfig        = 16
	opCheckWatches    = 17
	opRemoveWatches   = 18
	opCreateContainer = 19
	opDeleteContainer = 20
	opCreateTTL       = 21
	opMultiRead       = 22
	opAuth            = 100
	opSetWatches      = 101
	opSASL            = 102
	opGetEphemerals   = 103
	opGetAllChildren  = 104
	opSetWatches2     = 105
	opAddWatch        = 106
	opWhoAmI          = 107
	opCreateSession   = -10
	opCloseSession    = -11
	opError           = -1
)

// Reserved xids of replies that do not answer a numbered request.
const (
	xidWatchEvent = -1
	xidPing       = -2
)

// Code is a ZooKeeper error code (KeeperException.Code), as sent in reply headers.
type Code int32

// Error codes, with the values ZooKeeper sends.
const (
	CodeOK                      Code = 0
	CodeSystemError             Code = -1
	CodeRuntimeInconsistency    Code = -2
	CodeDataInconsistency       Code = -3
	CodeConnectionLoss          Code = -4
	CodeMarshallingError        Code = -5
	CodeUnimplemented           Code = -6
	CodeOperationTimeout        Code = -7
	CodeBadArguments            Code = -8
	CodeUnknownSession          Code = -12
	CodeAPIError                Code = -100
	CodeNoNode                  Code = -101
	CodeNoAuth                  Code = -102
	CodeBadVersion              Code = -103
	CodeNoChildrenForEphemerals Code = -108
	CodeNodeExists              Code = -110
	CodeNotEmpty                Code = -111
	CodeSessionExpired          Code = -112
	CodeInvalidCallback         Code = -113
	CodeInvalidACL              Code = -114
	CodeAuthFailed              Code = -115
	CodeSessionMoved            Code = -118
	CodeNotReadOnly             Code = -119
	CodeNoWatcher               Code = -121
)

func (c Code) Error() string {
	switch c {
	case CodeNoNode:
		return "no node"
	case CodeNodeExists:
		return "node exists"
	case CodeBadVersion:
		return "bad version"
	case CodeNotEmpty:
		return "directory not empty"
	case CodeNoChildrenForEphemerals:
		return "no children for ephemerals"
	case CodeBadArguments:
		return "bad arguments"
	case CodeInvalidACL:
		return "invalid ACL"
	case CodeNoAuth:
		return "not authenticated"
	case CodeUnimplemented:
		return "unimplemented"
	case CodeRuntimeInconsistency:
		return "runtime inconsistency"
	}
	return "zookeeper error"
}

// Watch event types (Watcher.Event.EventType).
const (
	evNodeCreated         = 1
	evNodeDeleted         = 2
	evNodeDataChanged     = 3
	evNodeChildrenChanged = 4
)

// stateSyncConnected is the keeper state sent with watch events.
const stateSyncConnected = 3

// Permission bits (ZooDefs.Perms).
const (
	PermRead   = 1 << 0
	PermWrite  = 1 << 1
	PermCreate = 1 << 2
	PermDelete = 1 << 3
	PermAdmin  = 1 << 4
	PermAll    = 0x1f
)

// Create flags (CreateMode.toFlag).
const (
	flagPersistent          = 0
	flagEphemeral           = 1
	flagSequential          = 2
	flagEphemeralSequential = 3
	flagContainer           = 4
	flagPersistentTTL       = 5
	flagPersistentSeqTTL    = 6
	containerEphemeralOwner = int64(-1 << 63) // EphemeralType.CONTAINER_EPHEMERAL_OWNER
	ttlEphemeralOwnerMask   = int64(-1) << 56 // 0xFF00000000000000: EphemeralType.TTL
	maxTTL                  = int64(0xFFFFFFFFFF)
	maxFrame                = 0xfffff + 1024 // jute.maxbuffer plus ZooKeeper's packet slack
)

// ACL is one access control entry.
type ACL struct {
	Perms  int32
	Scheme string
	ID     string
}

// WorldACL is world:anyone with all permissions (ZooDefs.Ids.OPEN_ACL_UNSAFE).
var WorldACL = []ACL{{Perms: PermAll, Scheme: "world", ID: "anyone"}}

// Stat is a node's metadata as ZooKeeper returns it.
type Stat struct {
	Czxid          int64
	Mzxid          int64
	Ctime          int64
	Mtime          int64
	Version        int32
	Cversion       int32
	Aversion       int32
	EphemeralOwner int64
	DataLength     int32
	NumChildren    int32
	Pzxid          int64
}
