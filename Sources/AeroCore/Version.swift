/// The engine version, reported in every decision explanation and by `--version`.
public enum AeroVersion {
    public static let string = "0.6.0"
}
