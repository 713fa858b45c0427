from botstream.sandbox.cli import main

raise SystemExit(main())
