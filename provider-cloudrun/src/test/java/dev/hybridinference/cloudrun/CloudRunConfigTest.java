package dev.hybridinference.cloudrun;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.ClientInfo;
import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.Pricing;
import java.math.BigDecimal;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** The {@code cloudrun} provider type through configuration, and what a bad section is told. */
class CloudRunConfigTest {
    private static final String BASE =
            "providers:\n  run:\n    type: cloudrun\n    serviceUrl: https://llm-abc-uc.a.run.app\n    auth: none\n";

    private static String error(String yaml) {
        try (InferenceClient c = InferenceClients.fromConfig(yaml)) {
            throw new AssertionError("expected a configuration error, built " + c.info());
        } catch (ConfigurationException e) {
            return e.getMessage();
        }
    }

    @Test
    void aPublicServiceScalesToZeroAndIsMeteredPerInstanceSecondUntilPriced() {
        try (InferenceClient c = InferenceClients.fromConfig(BASE)) {
            assertThat(c.info().deploymentKind()).isEqualTo(DeploymentKind.SERVERLESS);
            assertThat(c.info().coldStart())
                    .isEqualTo(ClientInfo.ColdStartProfile.scalesToZero(Duration.ofMinutes(15), 0));
            assertThat(c.info().pricing()).isInstanceOf(Pricing.PerInstanceSecond.class);
        }
    }

    @Test
    void instancePricingIsComposedFromTheServicesResources() {
        try (InferenceClient c = InferenceClients.fromConfig(BASE
                + "    minInstances: 1\n    idleTimeout: 10m\n"
                + "    pricing: {type: cloud-run-instance, vcpu: 8, memoryGib: 32, gpus: 1,"
                + " perVcpuSecond: 0.000018, perGibSecond: 0.000002, perGpuSecond: 0.0001867}\n")) {
            Pricing.PerInstanceSecond p = (Pricing.PerInstanceSecond) c.info().pricing();
            // 8 x 0.000018 + 32 x 0.000002 + 0.0001867
            assertThat(p.rate()).isEqualByComparingTo(new BigDecimal("0.0003947"));
            assertThat(p.minInstances()).isEqualTo(1);
            assertThat(p.scaleInDelay()).isEqualTo(Duration.ofMinutes(10));
            assertThat(c.info().coldStart().predictsColdAfter())
                    .as("one instance stays warm")
                    .isEmpty();
        }
    }

    @Test
    void requestBasedBillingIsTheOtherOption() {
        try (InferenceClient c = InferenceClients.fromConfig(
                BASE + "    pricing: {type: per-compute-time, perSecond: 0.000024, perRequest: 0.0000004}\n")) {
            assertThat(c.info().pricing()).isInstanceOf(Pricing.PerComputeTime.class);
        }
    }

    @Test
    void badSectionsNameTheKeyAndWhatWasExpected() {
        assertThat(error("providers:\n  run: {type: cloudrun, auth: none}\n")).startsWith("providers.run.serviceUrl:");
        assertThat(error(BASE.replace("auth: none", "auth: api-key"))).startsWith("providers.run.auth:");
        assertThat(error(BASE + "    keepWarm: 20m\n"))
                .startsWith("providers.run.keepWarm:")
                .contains("shorter than idleTimeout");
        assertThat(error(BASE + "    audience: https://x\n")).startsWith("providers.run.auth:");
        assertThat(error(BASE.replace("auth: none", "credentialsFile: /nonexistent/key.json")))
                .startsWith("providers.run.credentialsFile:")
                .contains("key.json");
        assertThat(error(BASE + "    minInstances: -1\n")).startsWith("providers.run.minInstances:");
        assertThat(error(BASE + "    serviceURL: x\n")).contains("serviceURL");
    }
}
