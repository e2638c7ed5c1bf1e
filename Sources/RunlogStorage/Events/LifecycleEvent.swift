/// The event types whose meaning the server knows: the rest are the producers' own.
public enum LifecycleEvent {
    /// The run is under way (status `running`).
    public static let started = "run.started"
    /// The run is over (`payload.status`: `succeeded`, `failed` or `cancelled`); a log that holds
    /// it is closed to further appends.
    public static let completed = "run.completed"
}
