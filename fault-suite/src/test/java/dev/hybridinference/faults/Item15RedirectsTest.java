package dev.hybridinference.faults;

import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.cost.CostLedger;
import dev.hybridinference.testkit.FaultServer;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.assertj.core.api.SoftAssertions;
import org.junit.jupiter.api.Test;

/**
 * Item 15: a chat POST answered with a 307 or 308 to another origin must not be followed: the prompt
 * (and, with some clients, the key) would go to a server nobody configured. The call fails with an
 * {@code InferenceException} that says it was redirected, and the other origin receives nothing.
 */
@FaultItem(value = 15, title = "Redirects")
class Item15RedirectsTest extends FaultTestBase {

    @Test
    void aPostRedirectedToAnotherOriginIsNotFollowed() {
        FaultServer elsewhere = server();
        FaultServer server = server();
        CostLedger ledger = new CostLedger();
        InferenceClient client = load(Yaml.single(server.baseUrl()), ledger);
        probe.ledger(ledger, Probe.Accounting.DIRECT);

        List<String> wrong = new ArrayList<>();
        for (int status : new int[] {307, 308}) {
            server.redirectChat(status, elsewhere.baseUrl() + "/v1/chat/completions");
            Probe.Outcome<?> blocking = probe.chat(client, ask("secret prompt"), LIMIT);
            Probe.Outcome<?> streamed = probe.stream(client, ask("secret prompt"), LIMIT);
            check(status + " blocking", blocking, wrong);
            check(status + " streamed", streamed, wrong);
        }
        for (var r : elsewhere.requests()) {
            // the key forwarded to an origin nobody configured is a leak too
            probe.scan("a request's headers at the other origin", r.headers().toString());
        }
        SoftAssertions soft = new SoftAssertions();
        soft.assertThat(elsewhere.requests())
                .as("requests that reached the other origin")
                .isEmpty();
        soft.assertThat(wrong)
                .as("redirected calls that did not fail saying so")
                .isEmpty();
        soft.assertAll();
    }

    private static void check(String what, Probe.Outcome<?> o, List<String> wrong) {
        if (o.failure() == null) {
            wrong.add(what + ": " + o.describe());
        } else if (!o.failure().getMessage().toLowerCase(Locale.ROOT).contains("redirect")) {
            wrong.add(what + ": the error does not say it was redirected: " + o.describe());
        }
    }
}
