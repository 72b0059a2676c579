package dev.hybridinference.core;

import java.util.List;
import java.util.Objects;

/**
 * What a client is.
 *
 * @param id the provider id, as named in the configuration
 * @param type the provider type ({@code vllm}, {@code sagemaker}, {@code hybrid}, ...)
 * @param deploymentKind where its models run
 * @param models the models it serves, as far as it knows; may be empty before discovery
 * @param pricing how its calls are billed
 */
public record ClientInfo(String id, String type, DeploymentKind deploymentKind, List<String> models, Pricing pricing) {
    /** Checks the required parts and copies the list. */
    public ClientInfo {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(deploymentKind, "deploymentKind");
        models = List.copyOf(models);
        Objects.requireNonNull(pricing, "pricing");
    }
}
