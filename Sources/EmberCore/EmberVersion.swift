/// Ember's version, the one place it is spelled (`ember --version`).
public enum EmberVersion {
    public static let current = "0.9.0"
}
