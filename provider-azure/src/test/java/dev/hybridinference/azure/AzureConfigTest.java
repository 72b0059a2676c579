package dev.hybridinference.azure;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.ChatResponse;
import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.Pricing;
import dev.hybridinference.testkit.azure.AzureEmulator;
import java.math.BigDecimal;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The {@code azure} provider type through configuration, end to end, and what a bad section is told. */
class AzureConfigTest {
    private static final String BASE = "providers:\n  az:\n    type: azure\n"
            + "    endpoint: https://res.openai.azure.com/openai/v1\n"
            + "    apiKey: ${AZURE_TEST_KEY_NOT_SET:-config-key-1}\n    model: gpt-4o-mini\n";

    private static String error(String yaml) {
        try (InferenceClient c = InferenceClients.fromConfig(yaml)) {
            throw new AssertionError("expected a configuration error, built " + c.info());
        } catch (ConfigurationException e) {
            return e.getMessage();
        }
    }

    @Test
    void aServerlessDeploymentIsPricedPerTokenAndAManagedOnePerInstanceHour() {
        try (InferenceClient c = InferenceClients.fromConfig(BASE)) {
            assertThat(c.info().deploymentKind()).isEqualTo(DeploymentKind.SERVERLESS);
            assertThat(c.info().pricing()).isEqualTo(new Pricing.PerToken(BigDecimal.ZERO, BigDecimal.ZERO, null));
        }
        try (InferenceClient c = InferenceClients.fromConfig(
                BASE + "    pricing: {type: per-token, inputPerMillion: 0.30, outputPerMillion: 0.61}\n")) {
            Pricing.PerToken p = (Pricing.PerToken) c.info().pricing();
            assertThat(p.outputPerMillion()).isEqualByComparingTo("0.61");
        }
        try (InferenceClient c = InferenceClients.fromConfig(
                BASE
                        + "    deployment: managed\n    instances: 2\n    pricing: {type: per-instance-hour, perHour: 3.40}\n")) {
            assertThat(c.info().deploymentKind()).isEqualTo(DeploymentKind.SERVER);
            Pricing.PerInstanceHour p = (Pricing.PerInstanceHour) c.info().pricing();
            assertThat(p.instances()).isEqualTo(2);
            assertThat(p.perHour()).isEqualByComparingTo("3.40");
        }
    }

    @Test
    void aConfiguredClientTalksToTheEmulatorTrustingItsCertificateFromAPemFile(@TempDir Path dir) {
        try (AzureEmulator emulator = AzureEmulator.builder()
                .apiKey("config-key-1")
                .deployment("phi-4")
                .start()) {
            Path pem = emulator.writeCertificatePem(dir);
            for (String api : new String[] {"openai-v1", "inference-sdk"}) {
                String endpoint = api.equals("openai-v1") ? emulator.openAiV1Url() : emulator.inferenceUrl();
                String yaml = "providers:\n  az:\n    type: azure\n    api: " + api + "\n    endpoint: " + endpoint
                        + "\n    apiKey: config-key-1\n    model: phi-4\n    caCertificates: " + pem + "\n"
                        + "    extraParameters: drop\n";
                try (InferenceClient c = InferenceClients.fromConfig(yaml)) {
                    emulator.answerNext("from config");
                    ChatResponse r = c.chat(ChatRequest.of("hi"));
                    assertThat(r.text()).as(api).isEqualTo("from config");
                    assertThat(r.receipt().providerId()).isEqualTo("az");
                }
            }
        }
    }

    @Test
    void badSectionsNameTheKeyAndWhatWasExpected() {
        assertThat(error("providers:\n  az: {type: azure, apiKey: k, model: m}\n"))
                .startsWith("providers.az.endpoint:");
        assertThat(error(BASE.replace("https://res", "http://res")))
                .startsWith("providers.az.endpoint:")
                .contains("https");
        assertThat(error(BASE + "    api: rest\n"))
                .startsWith("providers.az.api:")
                .contains("openai-v1");
        assertThat(error(BASE.replace("    apiKey: ${AZURE_TEST_KEY_NOT_SET:-config-key-1}\n", "")))
                .startsWith("providers.az.apiKey:");
        assertThat(error(BASE + "    auth: entra\n")).startsWith("providers.az.auth:");
        assertThat(error(BASE + "    auth: oauth\n")).startsWith("providers.az.auth:");
        assertThat(error(BASE.replace("    apiKey: ${AZURE_TEST_KEY_NOT_SET:-config-key-1}\n", "")
                        + "    auth: entra\n    tenantId: t\n    clientId: c\n"))
                .startsWith("providers.az.clientSecret:");
        assertThat(error(BASE + "    apiVersion: 2024-05-01-preview\n")).startsWith("providers.az.apiVersion:");
        assertThat(error(BASE + "    api: inference-sdk\n    apiVersion: 2022-01-01\n"))
                .startsWith("providers.az.apiVersion:")
                .contains("2024-08-01-preview");
        assertThat(error(BASE + "    extraParameters: allow\n")).startsWith("providers.az.extraParameters:");
        assertThat(error(BASE + "    deployment: dedicated\n")).startsWith("providers.az.deployment:");
        assertThat(error(BASE + "    instances: 2\n")).startsWith("providers.az.deployment:");
        assertThat(error(BASE.replace("    model: gpt-4o-mini\n", ""))).startsWith("providers.az.model:");
        assertThat(error(BASE + "    caCertificates: /nonexistent/ca.pem\n"))
                .startsWith("providers.az.caCertificates:");
        try (InferenceClient c =
                InferenceClients.fromConfig(BASE + "    caCertificates: ${AZURE_TEST_CA_NOT_SET:-}\n")) {
            assertThat(c.info().id())
                    .as("a blank caCertificates keeps the JVM's trust")
                    .isEqualTo("az");
        }
        assertThat(error(BASE + "    apikey: x\n")).contains("apikey");
        assertThat(error(BASE.replace("https://res", "http://res"))).doesNotContain("config-key-1");
    }
}
