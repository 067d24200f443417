# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small programs that show the auth server in use, e.g. the tutorial's service (myservice)."""
