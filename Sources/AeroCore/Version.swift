/// The engine version, reported in every decision explanation, in each node's status
/// (`engine_version`, compared across members by POLICY-1 and part of the facts digest) and by
/// `--version`. Raise it with every change to what a decision can depend on: a native rule,
/// the facts schema, or the sandbox's Lua semantics (0.7.0: ordered `next`/`pairs`, the
/// step-counted matcher, Lua 5.4.4's table functions; POLICY-1; aerodb.facts/2).
public enum AeroVersion {
    public static let string = "0.7.0"
}
