from sparling.cli import main

raise SystemExit(main())
