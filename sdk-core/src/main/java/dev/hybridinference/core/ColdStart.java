package dev.hybridinference.core;

/**
 * What is known about a cold start on one call.
 *
 * @param predicted routing expected the member to be cold when it chose it
 * @param observed the platform or the measured latency showed that the call started new capacity
 */
public record ColdStart(boolean predicted, boolean observed) {
    /** Neither predicted nor observed: the normal case for servers and local models. */
    public static final ColdStart NONE = new ColdStart(false, false);

    /** Observed by the provider, whatever was predicted. */
    public static final ColdStart OBSERVED = new ColdStart(false, true);
}
