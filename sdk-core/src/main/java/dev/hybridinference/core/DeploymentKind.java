package dev.hybridinference.core;

/** Where a provider's model runs, which decides how it bills and whether it has cold starts. */
public enum DeploymentKind {
    /** Scales to zero, bills per use, may cold start (SageMaker Serverless, Azure pay-per-token, Cloud Run). */
    SERVERLESS,
    /** Always-on capacity that bills for uptime (a vLLM fleet, a SageMaker real-time endpoint). */
    SERVER,
    /** In-process on this machine (the local GPU runtime). */
    LOCAL,
    /**
     * A composite whose members run in different places (a {@code HybridClient} over a server and a
     * serverless endpoint, say); its members' infos tell each one's kind. A receipt never has this kind:
     * it names the member that answered.
     */
    HYBRID
}
