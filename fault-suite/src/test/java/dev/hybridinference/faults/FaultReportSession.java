package dev.hybridinference.faults;

import org.junit.platform.launcher.LauncherSession;
import org.junit.platform.launcher.LauncherSessionListener;

/** Prints the fault report when the test run ends (registered in META-INF/services). */
public final class FaultReportSession implements LauncherSessionListener {
    /** Used by {@link java.util.ServiceLoader}. */
    public FaultReportSession() {}

    @Override
    public void launcherSessionClosed(LauncherSession session) {
        FaultReport.finishRun();
    }
}
