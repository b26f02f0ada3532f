// AeroStorage: the single-node storage engine (WAL, MVCC, recovery, checkpoints, authority file).
import AeroCore
