package dev.hybridinference.planner;

import dev.hybridinference.core.Pricing;
import java.util.Objects;

/**
 * One provider of the configuration as the planner simulates it: its pricing, read from the configuration by
 * the core's own reader, and its deployment model.
 *
 * @param id the provider's name in the configuration
 * @param type its {@code type}
 * @param model the model it serves (its {@code model} key, or its id)
 * @param pricing how it bills
 * @param deployment how it performs
 */
public record PlannedProvider(String id, String type, String model, Pricing pricing, Deployment deployment) {
    /** Checks that nothing is missing. */
    public PlannedProvider {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(pricing, "pricing");
        Objects.requireNonNull(deployment, "deployment");
    }

    /** Whether it is always-on capacity billed by the instance hour. */
    public boolean isServer() {
        return deployment.kind() == Deployment.Kind.SERVER && pricing instanceof Pricing.PerInstanceHour;
    }

    /** Whether it scales with use: per token, per compute time, or instances started on demand. */
    public boolean isServerless() {
        return deployment.kind() != Deployment.Kind.SERVER;
    }

    /** A copy with {@code instances} always-on instances, billed as such. */
    public PlannedProvider withServerInstances(int instances) {
        if (!(pricing instanceof Pricing.PerInstanceHour)) {
            throw new IllegalStateException(id + " is not billed per instance hour");
        }
        Pricing.PerInstanceHour p = (Pricing.PerInstanceHour) pricing;
        return new PlannedProvider(
                id,
                type,
                model,
                new Pricing.PerInstanceHour(p.perHour(), instances),
                deployment.withInstances(instances, instances));
    }
}
