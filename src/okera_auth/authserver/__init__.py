# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""okera-authserver, the token daemon: options, the server's life, HTTP, issuing, events."""
