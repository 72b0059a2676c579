package dev.hybridinference.examples;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.Receipt;
import dev.hybridinference.core.RequestOptions;
import java.io.PrintStream;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Geographic routing ({@code examples/geographic.yaml}). The SDK has no region concept of its own, so regions
 * are tiers: a {@code region} tag on the request picks one, and each tier lists the nearest deployment first
 * and the other region's as its fallback. The primary region (eu-west-1) runs an always-on server; the
 * secondary (us-east-1) a serverless endpoint that costs nothing while its users sleep.
 */
public final class GeographicRouting {
    private GeographicRouting() {}

    /**
     * Runs the example.
     *
     * @param args ignored
     */
    public static void main(String[] args) {
        run(System.out, System.getenv());
    }

    /** Runs the example with this environment; returns the receipt for each user's region ("none": no tag). */
    static Map<String, Receipt> run(PrintStream out, Map<String, String> environment) {
        Map<String, Receipt> receipts = new LinkedHashMap<>();
        try (Emulators emulators = new Emulators(out, environment)
                        .vllm("VLLM_EU_URL", b -> b)
                        .sageMaker("SAGEMAKER_US_ENDPOINT", "SAGEMAKER_US_ENDPOINT_URL", b -> b);
                InferenceClient client =
                        InferenceClients.loader().env(emulators.env()).load(Emulators.config("geographic.yaml"))) {
            for (String region : new String[] {"eu", "us", "none"}) {
                RequestOptions.Builder options = RequestOptions.builder();
                if (!region.equals("none")) {
                    options.tag("region", region); // where the user is, e.g. from the load balancer
                }
                Receipt r = client.chat(ChatRequest.builder()
                                .user("Good morning! What should I see first in this city?")
                                .maxTokens(16)
                                .options(options.build())
                                .build())
                        .receipt();
                String where = r.attributes().containsKey("region")
                        ? " in " + r.attributes().get("region")
                        : "";
                out.println("user in " + region + " -> " + r.providerId() + " (" + r.deploymentKind() + where + "): "
                        + r.route());
                receipts.put(region, r);
            }
        }
        return receipts;
    }
}
